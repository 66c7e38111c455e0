"""Tunnel tests in the configuration, the scheduler's schedule and the metrics: no network."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import new_key
from vpnwatch.config import ConfigFile, Settings, load_config
from vpnwatch.errors import ConfigError
from vpnwatch.jobs import Job
from vpnwatch.metrics import Metrics
from vpnwatch.quality import TrainPlan, TunnelPlan
from vpnwatch.result import Degradation, Failure, Result, TunnelQuality
from vpnwatch.scheduler import Scheduler
from vpnwatch.targets.wireguard import WireGuardTarget

WG = f"""[Interface]
PrivateKey = {new_key()}
Address = 198.19.0.2/32, 2001:2:0:100::2/128

[Peer]
PublicKey = {new_key()}
AllowedIPs = 198.19.0.1/32, 198.19.5.0/24
Endpoint = 198.18.0.1:51820
"""


def test_a_wgquick_file_with_address_and_a_host_in_allowed_ips_is_tunnel_tested(
    write: Callable[[str, str], Path],
) -> None:
    config = load_config(None, [write("fra.conf", WG)])
    (job,) = config.jobs
    assert job.tunnel == TunnelPlan()
    target = job.target
    assert isinstance(target, WireGuardTarget)
    assert (str(target.source), str(target.ping)) == ("198.19.0.2", "198.19.0.1")


def test_routing_everything_names_no_server_address(write: Callable[[str, str], Path]) -> None:
    text = WG.replace("198.19.0.1/32, 198.19.5.0/24", "0.0.0.0/0, ::/0")
    (job,) = load_config(None, [write("all.conf", text)]).jobs
    assert job.tunnel is None and not job.target.tunnel_ready


def test_settings_then_site_then_target_override_the_plan(
    write: Callable[[str, str], Path],
) -> None:
    write("fra.conf", WG)
    config = write(
        "vpnwatch.yml",
        """
settings:
  tunnel: {interval: 900, thresholds: {loss: 0.2, rtt: 0.5}}
  sites:
    tehran: {tunnel: {thresholds: {rtt: 2.0}, train: {echoes: 20}}}
targets:
  - from: fra.conf
    labels: {site: tehran}
    tunnel: {thresholds: {loss: 0.3}}
""",
    )
    (job,) = load_config(config).jobs
    assert job.tunnel is not None
    assert (job.tunnel.interval, job.tunnel.train.echoes) == (900, 20)
    thresholds = job.tunnel.thresholds
    assert (thresholds.loss, thresholds.rtt, thresholds.jitter) == (0.3, 2.0, 0.1)


def test_tunnel_false_turns_tests_off(write: Callable[[str, str], Path]) -> None:
    write("fra.conf", WG)
    config = write("vpnwatch.yml", "targets:\n  - from: fra.conf\n    tunnel: false\n")
    (job,) = load_config(config).jobs
    assert job.tunnel is None


@pytest.mark.parametrize(
    ("tunnel", "message"),
    [
        ("{thresholds: {loss: 2}}", "less than or equal to 1"),
        ("{train: {echoes: 0}}", "greater than or equal to 1"),
        ("{colour: red}", "Extra inputs are not permitted"),
        ("{timeout: 5}", "must exceed what the train"),
    ],
)
def test_bad_tunnel_settings_are_one_line(
    write: Callable[[str, str], Path], tunnel: str, message: str
) -> None:
    write("fra.conf", WG)
    config = write("vpnwatch.yml", f"targets:\n  - from: fra.conf\n    tunnel: {tunnel}\n")
    with pytest.raises(ConfigError, match=message) as error:
        load_config(config)
    assert "\n" not in str(error.value)


def test_a_ping_of_another_ip_version_than_every_address_is_refused() -> None:
    with pytest.raises(ValueError, match="same version"):
        WireGuardTarget(
            name="x", host="198.18.0.1", port=1, private_key=new_key(), public_key=new_key(),
            address=(ipaddress.ip_interface("198.19.0.2/32"),), ping=ipaddress.ip_address("2001:2::1"),
        )  # fmt: skip


def quality(**fields: Any) -> TunnelQuality:
    values: dict[str, Any] = {
        "train_sent": 10, "train_received": 10, "rtts": (0.02,) * 10, "goodput": 1e6,
        "held_seconds": 5.0, "held_bytes": 60_000, "cut": False,
        "sent": (("train", 10), ("burst", 16), ("hold", 50)),
        "received": (("train", 10), ("burst", 16), ("hold", 50)),
    }  # fmt: skip
    return TunnelQuality(**(values | fields))


def result(name: str, ok: bool = True, **fields: Any) -> Result:
    failure = None if ok else Failure.TIMEOUT
    return Result(
        name, "wireguard", ok, failure, "data" if fields else "handshake", (), 0.01, **fields
    )


def job(name: str = "wg") -> Job:
    target = WireGuardTarget(
        name=name, host="198.18.0.1", port=51820, private_key=new_key(), public_key=new_key(),
        address=(ipaddress.ip_interface("198.19.0.2/32"),), ping=ipaddress.ip_address("198.19.0.1"),
    )  # fmt: skip
    return Job(target, 60.0, 5.0, "test", TunnelPlan())


def verdict(metrics: Metrics) -> str:
    lines = [
        line for line in metrics.exposition().splitlines() if line.startswith("vpnwatch_verdict{")
    ]
    (state,) = [
        line.split('vpnwatch_verdict="')[1].split('"')[0] for line in lines if line.endswith(" 1")
    ]
    return state


def test_tunnel_results_feed_the_tunnel_families_and_the_verdict_only() -> None:
    metrics, wg = Metrics(), job()
    metrics.configure([wg])
    metrics.observe(wg, result("wg"))
    assert verdict(metrics) == "ok"
    cut = quality(cut=True, rtts=(0.02, 0.5, 0.02))
    metrics.observe(wg, result("wg", tunnel=cut, degraded=(Degradation.JITTER, Degradation.CUT)))
    text = metrics.exposition()
    assert verdict(metrics) == "degraded"
    assert 'vpnwatch_probes_total{target="wg",protocol="wireguard"} 1' in text  # untouched
    assert 'vpnwatch_tunnel_tests_total{target="wg",protocol="wireguard"} 1' in text
    assert 'vpnwatch_tunnel_cuts_total{target="wg",protocol="wireguard"} 1' in text
    assert (
        'vpnwatch_tunnel_echoes_sent_total{target="wg",protocol="wireguard",phase="hold"} 50'
        in text
    )
    assert 'vpnwatch_tunnel_degraded{target="wg",protocol="wireguard",reason="cut"} 1' in text
    assert 'vpnwatch_tunnel_degraded{target="wg",protocol="wireguard",reason="loss"} 0' in text
    assert 'vpnwatch_tunnel_rtt_seconds_count{target="wg",protocol="wireguard"} 3' in text
    nothing = quality(train_received=0, rtts=(), goodput=None)
    metrics.observe(wg, result("wg", ok=False, tunnel=nothing))
    assert verdict(metrics) == "failing"
    assert 'vpnwatch_probe_success{target="wg",protocol="wireguard"} 1' in metrics.exposition()


async def test_tunnel_tests_come_on_their_own_interval_and_sooner_while_degraded() -> None:
    calls: list[tuple[float, bool]] = []
    loop = asyncio.get_running_loop()
    plan = TunnelPlan(
        interval=0.5, timeout=0.4, train=TrainPlan(echoes=1, burst=0, hold_seconds=0, linger=0.1)
    )
    wg = Job(job().target, 0.05, 0.04, "test", plan)

    async def probe(target: Any, timeout: float, tunnel: TunnelPlan | None = None) -> Result:
        calls.append((loop.time(), tunnel is not None))
        if tunnel is not None:
            return result(
                "wg", tunnel=quality(), degraded=(Degradation.LOSS,) if len(calls) < 12 else ()
            )
        return result("wg")

    scheduler = Scheduler(
        {"wireguard": probe}, lambda job, res: None, lambda job, exc: None,
        on_local_error=lambda job, exc: None, concurrency=4, jitter=0.0,
    )  # fmt: skip
    task = asyncio.create_task(scheduler.run([wg]))
    await asyncio.sleep(2.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    tunnel_calls = [at for at, tunnel in calls if tunnel]
    assert len(tunnel_calls) >= 2
    assert 0 < len(tunnel_calls) < len(calls)  # handshakes in between


def test_address_and_allowed_ips_lines_add_up_as_in_wg_quick(
    write: Callable[[str, str], Path],
) -> None:
    text = WG.replace(
        "AllowedIPs = 198.19.0.1/32, 198.19.5.0/24",
        "AllowedIPs = 0.0.0.0/0\nAllowedIPs = 198.19.0.1/32",
    ).replace(
        "Address = 198.19.0.2/32, 2001:2:0:100::2/128",
        "Address = 198.19.0.2/32\nAddress = 2001:2:0:100::2/128",
    )
    (job,) = load_config(None, [write("lines.conf", text)]).jobs
    target = job.target
    assert isinstance(target, WireGuardTarget) and len(target.address) == 2
    assert (str(target.source), str(target.ping)) == ("198.19.0.2", "198.19.0.1")


def test_the_constructed_defaults_are_what_validation_gives() -> None:
    """Defaults are built without validation (start-up); they must be valid all the same."""
    constructed = ConfigFile.model_construct().settings
    assert constructed == Settings.model_validate({})
    assert Settings.model_validate(constructed.model_dump()) == constructed
    assert constructed.tunnel == TunnelPlan.model_validate({"train": {}, "thresholds": {}})
