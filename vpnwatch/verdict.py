"""Telling blocking from our own outage: a target's verdict, judged against its site's controls.

- ``ok``: the target's last probe succeeded.
- ``failing``: it failed while the site's controls still work (or there are none to ask): the
  endpoint, or its protocol on this path, is affected — an outage or blocking.
- ``offline``: it failed and every control at the site failed too: the vantage point's own network
  is down, and the failure is no evidence against the endpoint.

A site is the value of the ``site`` label (targets without one share the empty site).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    FAILING = "failing"
    OFFLINE = "offline"


def judge(ok: bool, controls_ok: Iterable[bool]) -> Verdict:
    """``controls_ok``: the last outcome of each control at the target's site that has one."""
    if ok:
        return Verdict.OK
    controls = list(controls_ok)
    if controls and not any(controls):
        return Verdict.OFFLINE
    return Verdict.FAILING
