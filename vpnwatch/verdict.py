"""Telling blocking from our own outage: a target's verdict, judged against its site's controls.

- ``ok``: the target's last probe succeeded, and so did its last tunnel test, within thresholds.
- ``degraded``: the handshake works and the tunnel carries traffic, but its last tunnel test found
  loss, round trips, jitter or goodput beyond the target's thresholds, or the session was cut
  (the reasons: :class:`~vpnwatch.result.Degradation`).
- ``failing``: it failed while the site's controls still work (or there are none to ask): the
  endpoint, or its protocol on this path, is affected — an outage or blocking. A tunnel that
  handshakes but carries nothing (its last tunnel test failed) is failing too.
- ``offline``: it failed and every control at the site failed too: the vantage point's own network
  is down, and the failure is no evidence against the endpoint.

A site is the value of the ``site`` label (targets without one share the empty site).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILING = "failing"
    OFFLINE = "offline"


def judge(ok: bool, controls_ok: Iterable[bool], degraded: bool = False) -> Verdict:
    """``ok``: the last probe and the last tunnel test succeeded; ``degraded``: that tunnel test
    found reasons; ``controls_ok``: the last outcome of each control at the target's site."""
    if ok:
        return Verdict.DEGRADED if degraded else Verdict.OK
    controls = list(controls_ok)
    if controls and not any(controls):
        return Verdict.OFFLINE
    return Verdict.FAILING
