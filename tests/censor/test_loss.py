"""30 % loss: success ratios land near 70 %, because no probe hides a lost packet behind a retry.

Loss is applied towards the server only, so an exchange of one request and one answer survives
with probability exactly 0.7. What each probe retransmits within its timeout decides whether that
is what it reports:

- WireGuard: like wireguard-go, the probe sends a new initiation after REKEY_TIMEOUT (5 s), far
  beyond this test's 0.5 s timeout, so here a lost initiation is a failed probe. (Two attempts
  within a 10 s timeout are tested in test_retransmission.py.)
- DNS: one query, never repeated.
- TCP connect: the kernel retransmits a SYN after 1 s, then 2 s, 4 s...; with a timeout below 1 s
  a lost SYN is a failed probe. With a longer timeout the kernel's retry shows as a slow connect,
  and a censor's loss shows in the duration, not the ratio: that is TCP, not vpnwatch, hiding it.
- OpenVPN's reliability layer retransmits after 2 s (--tls-timeout) with backoff, and obfs4 rides
  on TCP's retransmissions, as their real clients do; both exchange many packets, so their ratio is
  not 0.7 and is not asserted here.

200 probes per protocol; the band is where 200 draws at p = 0.7 land but for a chance below one in
a million on each side.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from vpnwatch.lab.censor import Censor
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import Result
from vpnwatch.targets.base import TargetBase

from .conftest import Lab

pytestmark = pytest.mark.lab

PROBES_PER_PROTOCOL = 200
LOSS = 0.30
TIMEOUT = 0.5  # below TCP's first SYN retransmission (1 s): no retry can hide a loss
#: WireGuard probes of one key take turns; several keys probe side by side, one probe per key at a
#: time, so that no probe spends its timeout waiting for its turn (that would be no probe at all).
WIREGUARD_KEYS = 10
CONCURRENCY = WIREGUARD_KEYS


def binomial_band(n: int, p: float, tail: float = 1e-6) -> tuple[int, int]:
    """The smallest and largest success counts outside the two ``tail``-probability tails."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low = next(k for k in range(n + 1) if sum(pmf[: k + 1]) > tail)
    high = next(k for k in range(n, -1, -1) if sum(pmf[k:]) > tail)
    return low, high


def test_the_band_is_sound() -> None:
    low, high = binomial_band(PROBES_PER_PROTOCOL, 1 - LOSS)
    assert 100 < low < 140 < high < 170
    # A probe that retried once would succeed 91 % of the time: far outside the band.
    assert high < 0.91 * PROBES_PER_PROTOCOL


async def probe_many(targets: list[TargetBase]) -> list[Result]:
    """Probe every target: CONCURRENCY workers, each taking every CONCURRENCY-th target in turn.

    With targets laid out round-robin over the WireGuard keys, a worker probes one key only, so no
    probe waits for another of its key to finish (a wait that could eat its whole timeout).
    """

    async def worker(share: list[TargetBase]) -> list[Result]:
        return [await PROBES[target.protocol](target, TIMEOUT) for target in share]

    shares = await asyncio.gather(*(worker(targets[i::CONCURRENCY]) for i in range(CONCURRENCY)))
    return [result for share in shares for result in share]


@pytest.mark.parametrize("name", ["wireguard", "dns", "tcp"])
async def test_thirty_percent_loss_shows_as_seventy_percent_success(
    lab: Lab, censor: Censor, name: str
) -> None:
    if name == "wireguard":
        keys = [lab.wireguard.client_target(f"wg{i}") for i in range(WIREGUARD_KEYS)]
        targets: list[TargetBase] = [keys[i % WIREGUARD_KEYS] for i in range(PROBES_PER_PROTOCOL)]
    else:
        targets = [lab.targets[name]] * PROBES_PER_PROTOCOL
    censor.apply("loss", percent=LOSS * 100)
    results = await probe_many(targets)
    successes = sum(result.ok for result in results)
    low, high = binomial_band(PROBES_PER_PROTOCOL, 1 - LOSS)
    assert low <= successes <= high, f"{successes}/{PROBES_PER_PROTOCOL} succeeded"
    # Every loss is reported as what it is: no answer, at the first exchange.
    assert {(str(r.failure), r.stage) for r in results if not r.ok} <= {
        ("timeout", "handshake"),
        ("timeout", "answer"),
        ("timeout", "connect"),
    }
