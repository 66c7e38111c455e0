"""10 % loss both ways: the WireGuard probe retries as wireguard-go does, so loss costs it little.

One attempt is an initiation that must reach the server and a response that must come back: with
10 % loss each way it succeeds with q = 0.9 * 0.9 = 0.81. The probe sends a new initiation (new
index, new ephemeral key) when none was answered within REKEY_TIMEOUT, 5 s, plus up to 0.333 s
of jitter, like wireguard-go. Within a 10 s timeout that is exactly two attempts: the third would
be due no sooner than 10 s after the machine started, past the probe's deadline. So a probe
succeeds with p = 1 - (1 - q)^2 = 0.9639, where one that never retried would with q = 0.81.

The 300 probes' successes S are Binomial(300, p) if the probe retries (the censor draws each
packet's fate independently). The test asserts S lies in the band of that law that leaves out
less than 1e-5 on each side, so a correct probe fails it with probability below 2e-5 < 1e-4
(here the band is [273, 300]: P(S = 300) = 0.9639^300 = 1.6e-5 is not cut). Under one attempt,
S ~ Binomial(300, 0.81) has mean 243 and standard deviation 6.8, and lands in that band with
probability about 1e-6: the two bands do not overlap (:func:`test_the_bands_are_apart`).

Probes of one key to one server take turns, so 100 key pairs probe side by side, each three
times in a row: the slowest pair takes at most 3 * 10 s, typically 15 s.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from vpnwatch.lab.censor import Censor
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import Failure, Result
from vpnwatch.targets.wireguard import WireGuardTarget

from .conftest import Lab
from .test_loss import binomial_band

pytestmark = pytest.mark.lab

PROBES_IN_ALL = 300
PAIRS = 100
LOSS = 0.10
TIMEOUT = 10.0
ONE_ATTEMPT = (1 - LOSS) ** 2
TWO_ATTEMPTS = 1 - (1 - ONE_ATTEMPT) ** 2
#: Each tail the band leaves out: a correct probe fails the test with twice this, at most.
TAIL = 1e-5


def test_the_bands_are_apart() -> None:
    low, high = binomial_band(PROBES_IN_ALL, TWO_ATTEMPTS, TAIL)
    assert (low, high) == (273, 300)
    assert binomial_band(PROBES_IN_ALL, ONE_ATTEMPT, TAIL)[1] < low
    # The chance that a probe without retries would pass the test all the same.
    pmf = [
        math.comb(PROBES_IN_ALL, k) * ONE_ATTEMPT**k * (1 - ONE_ATTEMPT) ** (PROBES_IN_ALL - k)
        for k in range(PROBES_IN_ALL + 1)
    ]
    assert sum(pmf[low:]) < 1e-5


async def probe_in_turn(target: WireGuardTarget, times: int) -> list[Result]:
    """One key pair's probes, one after another, as its turns allow."""
    return [await PROBES["wireguard"](target, TIMEOUT) for _ in range(times)]


async def test_ten_percent_loss_both_ways_is_survived_by_a_retransmission(
    lab: Lab, censor: Censor
) -> None:
    targets = [lab.wireguard.client_target(f"retry{i}") for i in range(PAIRS)]
    censor.apply("loss", "udp", lab.wireguard.port, percent=LOSS * 100, direction="both")
    runs = await asyncio.gather(
        *(probe_in_turn(target, PROBES_IN_ALL // PAIRS) for target in targets)
    )
    results = [result for run in runs for result in run]
    successes = sum(result.ok for result in results)
    low, high = binomial_band(PROBES_IN_ALL, TWO_ATTEMPTS, TAIL)
    assert low <= successes <= high, f"{successes}/{PROBES_IN_ALL} succeeded"
    # No cookie reply gave anyone a third attempt: the server was never under load.
    assert not [r for r in results if "cookie" in r.detail]
    # A failure is silence after exactly two initiations, in the handshake.
    for result in results:
        if not result.ok:
            assert (result.failure, result.stage) == (Failure.TIMEOUT, "handshake"), result
            assert result.detail.startswith("no valid reply to 2 initiations"), result
