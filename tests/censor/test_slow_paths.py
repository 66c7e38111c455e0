"""Delay and throttling: paths that still work, slowly, or starve the larger handshakes."""

from __future__ import annotations

import asyncio

import pytest

from vpnwatch.lab.censor import Censor
from vpnwatch.probes.registry import PROBES

from .conftest import Lab
from .test_ground_truth import PROTOCOLS, outcome, probe_all

pytestmark = pytest.mark.lab

DELAY = 0.2  # each way
RATE, BURST = 256, 512  # bytes per second, bytes


async def test_a_delay_within_the_timeout_slows_every_protocol_but_fails_none(
    lab: Lab, censor: Censor
) -> None:
    censor.apply("delay", ms=DELAY * 1000)
    results = await probe_all(lab, timeout=5)
    assert {name: outcome(r) for name, r in results.items()} == dict.fromkeys(PROTOCOLS, ("ok", ""))
    # Not a timing goal but causality: no answer can come back before one round trip through
    # the delay line, so each probe took at least that long.
    assert all(r.duration >= 2 * DELAY for r in results.values()), {
        name: r.duration for name, r in results.items()
    }


async def test_clearing_the_delay_removes_the_detour(lab: Lab, censor: Censor) -> None:
    censor.apply("delay", ms=5000)
    censor.clear()
    results = await probe_all(lab, timeout=2)
    assert all(r.ok for r in results.values()), results


async def test_throttling_starves_what_needs_more_than_a_trickle(lab: Lab, censor: Censor) -> None:
    """At 256 bytes/s both ways, single-datagram exchanges pass and TLS handshakes starve.

    The connection opens (a SYN fits the burst), then the certificate flight waits on a policer
    dropping most of it: a timeout after the first stage, where a blocked path fails at the first.
    """
    censor.apply("throttle", rate=RATE, burst=BURST)
    # The policer is one bucket per direction for every flow: the datagram exchanges go first,
    # or the TLS flights racing them could spend the burst before their one datagram passed.
    datagrams = {name: lab.targets[name] for name in ("wireguard", "dns")}
    first = await asyncio.gather(*(PROBES[t.protocol](t, 2) for t in datagrams.values()))
    assert [outcome(r) for r in first] == [("ok", "")] * 2, first
    await asyncio.sleep(BURST / RATE)  # the bucket fills up again
    results = await probe_all(lab, timeout=2)
    got = {name: outcome(r) for name, r in results.items()}
    assert got["openvpn-tcp"][0] == "timeout" and got["openvpn-tcp"][1] != "connect"
    assert got["tls"] == ("timeout", "tls")
