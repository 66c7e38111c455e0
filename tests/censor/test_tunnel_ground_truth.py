"""Ground truth for the tunnel: censors that let WireGuard's handshake through and then drop,
throttle, cut or jitter its traffic give the verdict and reason they should, against the real
wireguard-go (and, for a data-only drop and a throttle, the real openvpn 2.6), while the
handshake's own metrics and the site's controls stay ok.

Each case applies one policy, then runs at once a tunnel test, a plain handshake probe and every
control, feeds the results to the metrics as the monitor does, and reads the verdict back.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import pytest

from vpnwatch.jobs import Job
from vpnwatch.lab.censor import Censor
from vpnwatch.metrics import Metrics
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.quality import Thresholds, TrainPlan, TunnelPlan
from vpnwatch.result import Degradation, Failure, Result

from .conftest import Lab

pytestmark = pytest.mark.lab

CONTROLS = ("tcp", "tls", "dns")
#: Small and quick: 20 echoes in 0.4 s, a 16-echo burst, a 3 s hold of 1 kB echoes.
PLAN = TunnelPlan(
    timeout=20,
    train=TrainPlan(echoes=20, spacing=0.02, hold_seconds=3, hold_spacing=0.05),
    thresholds=Thresholds(rtt=None),
)


async def run_case(
    lab: Lab, name: str, plan: TunnelPlan = PLAN, *, handshake_ok: bool = True
) -> tuple[Result, Result, Metrics]:
    """A tunnel test, a handshake probe (of another key) and the controls, at once; the metrics
    the monitor would hold after them. Every control must pass, and the handshake probe too
    unless the censor drops handshakes as well (``handshake_ok``)."""
    tunnel = lab.wireguard.client_target(name, tunnel=True)
    handshake = lab.wireguard.client_target(f"{name}-hs")
    probe = PROBES["wireguard"]
    tested, probed, *controls = await asyncio.gather(
        run_probe(probe, tunnel, plan.timeout, plan),
        run_probe(probe, handshake, 5.0),
        *(run_probe(PROBES[lab.targets[c].protocol], lab.targets[c], 5.0) for c in CONTROLS),
    )
    for control, result in zip(CONTROLS, controls, strict=True):
        assert result.ok, (control, result)  # the controls are untouched
    assert probed.ok or not handshake_ok, probed  # so is the handshake
    metrics = Metrics()
    jobs = [
        Job(tunnel, 60.0, 5.0, "test", plan),
        *(Job(lab.targets[c], 60.0, 5.0, "test") for c in CONTROLS),
    ]
    metrics.configure(jobs)
    metrics.observe(jobs[0], replace(probed, target=tunnel.name))
    metrics.observe(jobs[0], tested)
    for job, result in zip(jobs[1:], controls, strict=True):
        metrics.observe(job, result)
    return tested, probed, metrics


def verdict(metrics: Metrics, name: str) -> str:
    text = metrics.exposition()
    states = re.findall(
        rf'vpnwatch_verdict{{target="{re.escape(name)}",[^}}]*vpnwatch_verdict="(\w+)"}} 1', text
    )
    (state,) = states
    return state


def handshake_success(metrics: Metrics, name: str) -> str:
    (value,) = re.findall(
        rf'vpnwatch_probe_success{{target="{re.escape(name)}"[^}}]*}} (\S+)', metrics.exposition()
    )
    return value


async def test_without_a_censor_the_tunnel_is_ok(lab: Lab, censor: Censor) -> None:
    tested, _, metrics = await run_case(lab, "clean")
    assert tested.ok and tested.degraded == (), tested
    assert verdict(metrics, "clean") == "ok"


async def test_data_dropped_while_handshakes_pass_is_failing(lab: Lab, censor: Censor) -> None:
    censor.apply("drop-data", "wireguard")
    tested, _, metrics = await run_case(lab, "drop-data")
    assert (tested.failure, tested.stage) == (Failure.TIMEOUT, "data"), tested
    assert verdict(metrics, "drop-data") == "failing"
    assert handshake_success(metrics, "drop-data") == "1"
    assert 'vpnwatch_tunnel_success{target="drop-data"' in metrics.exposition()


async def test_throttled_data_is_degraded_for_goodput(lab: Lab, censor: Censor) -> None:
    censor.apply("throttle", "udp", lab.wireguard.port, rate=4096, burst=4096)
    tested, _, metrics = await run_case(lab, "throttle")
    assert tested.ok and Degradation.GOODPUT in tested.degraded, tested
    assert verdict(metrics, "throttle") == "degraded"
    assert re.search(
        r'vpnwatch_tunnel_degraded{target="throttle",[^}]*reason="goodput"} 1', metrics.exposition()
    )


@pytest.mark.parametrize("limit", [{"bytes": 60_000}, {"seconds": 2.0}], ids=["bytes", "seconds"])
async def test_a_flow_cut_after_bytes_or_seconds_is_degraded_for_a_cut(
    lab: Lab, censor: Censor, limit: dict[str, float]
) -> None:
    censor.apply("cut", "udp", lab.wireguard.port, **limit)
    name = f"cut-{next(iter(limit))}"
    tested, _, metrics = await run_case(lab, name)
    assert tested.ok and tested.degraded == (Degradation.CUT,), tested
    assert tested.tunnel is not None and tested.tunnel.cut
    assert verdict(metrics, name) == "degraded"


async def test_jitter_is_degraded_for_jitter(lab: Lab, censor: Censor) -> None:
    censor.apply("delay", "udp", lab.wireguard.port, ms=5, jitter=100)
    plan = PLAN.model_copy(update={"thresholds": Thresholds(rtt=None, jitter=0.02, loss=None)})
    tested, _, metrics = await run_case(lab, "jitter", plan)
    assert tested.ok and Degradation.JITTER in tested.degraded, tested
    assert verdict(metrics, "jitter") == "degraded"


@pytest.mark.parametrize("percent", [10, 30])
async def test_measured_loss_lies_in_the_binomial_band(
    lab: Lab, censor: Censor, percent: int
) -> None:
    """Echo requests lost towards the server with probability p: over n echoes the measured
    loss is within three standard deviations of p (a false alarm once in 370 runs)."""
    censor.apply("loss", "udp", lab.wireguard.port, percent=percent)
    n = 300
    plan = TunnelPlan(
        timeout=25,
        train=TrainPlan(echoes=n, spacing=0.005, burst=0, hold_seconds=0),
        thresholds=Thresholds(rtt=None, loss=0.05),
    )
    tested, _, _ = await run_case(lab, f"loss-{percent}", plan, handshake_ok=False)
    assert tested.ok and tested.tunnel is not None, tested
    p = percent / 100
    sigma = (p * (1 - p) / n) ** 0.5
    assert tested.tunnel.loss is not None
    assert abs(tested.tunnel.loss - p) < 3 * sigma, tested.tunnel.loss
    assert Degradation.LOSS in tested.degraded  # (the verdict: see the handshake's loss too)


# -- OpenVPN: the same censors against the real openvpn 2.6 server ----------------------------


async def run_openvpn_case(lab: Lab, name: str) -> tuple[Result, Metrics]:
    """A tunnel test and a handshake probe of the lab's OpenVPN UDP server, and the controls, at
    once; the metrics after them. The controls and the handshake probe must pass."""
    target = lab.targets["openvpn-udp"].model_copy(update={"name": name})
    probe = PROBES["openvpn"]
    tested, probed, *controls = await asyncio.gather(
        run_probe(probe, target, PLAN.timeout, PLAN),
        run_probe(probe, target, 5.0),
        *(run_probe(PROBES[lab.targets[c].protocol], lab.targets[c], 5.0) for c in CONTROLS),
    )
    for control, result in zip(CONTROLS, controls, strict=True):
        assert result.ok, (control, result)
    assert probed.ok, probed
    metrics = Metrics()
    jobs = [
        Job(target, 60.0, 5.0, "test", PLAN),
        *(Job(lab.targets[c], 60.0, 5.0, "test") for c in CONTROLS),
    ]
    metrics.configure(jobs)
    metrics.observe(jobs[0], probed)
    metrics.observe(jobs[0], tested)
    for job, result in zip(jobs[1:], controls, strict=True):
        metrics.observe(job, result)
    return tested, metrics


async def test_openvpn_data_dropped_while_handshakes_pass_is_failing(
    lab: Lab, censor: Censor
) -> None:
    censor.apply("drop-data", "openvpn")  # P_DATA_V2 (and V1), both ways
    tested, metrics = await run_openvpn_case(lab, "openvpn-drop-data")
    assert (tested.failure, tested.stage) == (Failure.TIMEOUT, "data"), tested
    assert verdict(metrics, "openvpn-drop-data") == "failing"
    assert handshake_success(metrics, "openvpn-drop-data") == "1"


async def test_openvpn_throttled_data_is_degraded_for_goodput(lab: Lab, censor: Censor) -> None:
    port = lab.targets["openvpn-udp"].port
    censor.apply("throttle", "udp", port, rate=4096, burst=4096)
    tested, metrics = await run_openvpn_case(lab, "openvpn-throttle")
    assert tested.ok and Degradation.GOODPUT in tested.degraded, tested
    assert verdict(metrics, "openvpn-throttle") == "degraded"
