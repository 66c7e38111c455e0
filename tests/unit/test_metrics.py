from __future__ import annotations

import asyncio
import base64
import gzip
import subprocess

import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from tests.conftest import new_key
from vpnwatch.app import build_app
from vpnwatch.exposition import Format
from vpnwatch.jobs import Job
from vpnwatch.metrics import SLICE, Metrics
from vpnwatch.result import Failure, LocalReason, Result
from vpnwatch.targets.control import TcpTarget
from vpnwatch.targets.wireguard import WireGuardTarget


def job(name: str, **labels: str) -> Job:
    target = WireGuardTarget(
        name=name,
        host="198.18.0.2",
        port=51820,
        private_key=new_key(),
        public_key=new_key(),
        labels=labels,
    )
    return Job(target, interval=60, timeout=5, source="test")


def ok(name: str, duration: float) -> Result:
    return Result(name, "wireguard", True, None, "handshake", (("handshake", duration),), duration)


def failed(name: str, failure: Failure, stage: str = "handshake") -> Result:
    return Result(name, "wireguard", False, failure, stage, (), 1.0)


GZIP = {"Accept-Encoding": "gzip, deflate"}


class Scraped:
    """The monitor's exposition as Prometheus' client library parses it, scraped at each call."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        for family in text_families(self.metrics.exposition()):
            for sample in family.samples:
                if sample.name == name and sample.labels == (labels or {}):
                    return float(sample.value)
        return None


def registry_with(metrics: Metrics) -> Scraped:
    return Scraped(metrics)


def test_results_become_counters_gauges_and_a_histogram():
    metrics = Metrics()
    good, bad = job("good", provider="acme"), job("bad")
    metrics.configure([good, bad])
    for duration in (0.004, 0.02, 0.3):
        metrics.observe(good, ok("good", duration))
    metrics.observe(bad, failed("bad", Failure.TIMEOUT))
    metrics.observe(bad, failed("bad", Failure.TIMEOUT))
    registry = registry_with(metrics)
    value = registry.get_sample_value
    good_labels = {"target": "good", "protocol": "wireguard", "provider": "acme"}
    bad_labels = {"target": "bad", "protocol": "wireguard", "provider": ""}
    assert value("vpnwatch_probes_total", good_labels) == 3
    assert value("vpnwatch_probe_success", good_labels) == 1
    assert value("vpnwatch_probe_success", bad_labels) == 0
    assert (
        value(
            "vpnwatch_probe_failures_total",
            {**bad_labels, "failure": "timeout", "stage": "handshake"},
        )
        == 2
    )
    assert value("vpnwatch_handshake_duration_seconds_bucket", {**good_labels, "le": "0.005"}) == 1
    assert value("vpnwatch_handshake_duration_seconds_bucket", {**good_labels, "le": "0.025"}) == 2
    assert value("vpnwatch_handshake_duration_seconds_count", good_labels) == 3
    assert value("vpnwatch_last_success_timestamp_seconds", good_labels) > 1.6e9
    assert value("vpnwatch_last_success_timestamp_seconds", bad_labels) is None
    info = {**good_labels, "endpoint": "198.18.0.2:51820", "transport": "udp", "role": "target"}
    assert value("vpnwatch_target_info", info) == 1
    assert value("vpnwatch_config_last_reload_successful") == 1
    metrics.started(0.003)
    metrics.started(2.0)
    assert value("vpnwatch_schedule_lateness_seconds_bucket", {"le": "0.005"}) == 1
    assert value("vpnwatch_schedule_lateness_seconds_count") == 2


def test_reconfigure_keeps_unchanged_targets_and_drops_removed_ones():
    metrics = Metrics()
    kept, removed = job("kept"), job("removed")
    metrics.configure([kept, removed])
    metrics.observe(kept, ok("kept", 0.01))
    metrics.observe(removed, ok("removed", 0.01))
    metrics.configure([kept, job("new")])
    registry = registry_with(metrics)
    assert (
        registry.get_sample_value(
            "vpnwatch_probes_total", {"target": "kept", "protocol": "wireguard"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "vpnwatch_probes_total", {"target": "removed", "protocol": "wireguard"}
        )
        is None
    )
    assert (
        registry.get_sample_value(
            "vpnwatch_probes_total", {"target": "new", "protocol": "wireguard"}
        )
        == 0
    )
    metrics.observe(removed, ok("removed", 0.01))  # a probe finishing after its target was removed
    assert "removed" not in metrics.targets


def test_exposition_passes_promtool_and_holds_no_secret():
    metrics = Metrics()
    j = job("good", region="eu")
    metrics.configure([j, job("bad")])
    metrics.observe(j, ok("good", 0.01))
    metrics.observe(j, failed("good", Failure.AUTH))
    metrics.observe(j, staged("good", True, ("tls", 0.04), not_after=1_900_000_000.0))
    text = metrics.exposition().encode()
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    private = j.target.private_key.get_secret_value()

    assert base64.b64encode(private) not in text and private.hex().encode() not in text


def control(name: str, site: str) -> Job:
    return Job(
        TcpTarget(name=name, host="198.18.0.2", port=443, labels={"site": site}), 60, 5, "test"
    )


def test_verdict_is_offline_only_when_every_control_of_the_site_fails():
    metrics = Metrics()
    wg_a, wg_b = job("wg-a", site="a"), job("wg-b", site="b")
    ctl_a1, ctl_a2, ctl_b = control("ctl-a1", "a"), control("ctl-a2", "a"), control("ctl-b", "b")
    metrics.configure([wg_a, wg_b, ctl_a1, ctl_a2, ctl_b])
    metrics.observe(wg_a, failed("wg-a", Failure.TIMEOUT))
    metrics.observe(wg_b, failed("wg-b", Failure.TIMEOUT))
    metrics.observe(ctl_a1, failed("ctl-a1", Failure.TIMEOUT))
    metrics.observe(ctl_a2, ok("ctl-a2", 0.01))
    metrics.observe(ctl_b, failed("ctl-b", Failure.UNREACHABLE))
    value = registry_with(metrics).get_sample_value

    def verdict(name: str, site: str) -> str:
        states = {
            v: value(
                "vpnwatch_verdict",
                {"target": name, "protocol": "wireguard", "site": site, "vpnwatch_verdict": v},
            )
            for v in ("ok", "failing", "offline")
        }
        assert sorted(states.values()) == [0, 0, 1]
        return next(v for v, x in states.items() if x == 1)

    assert verdict("wg-a", "a") == "failing"  # one control still works: the endpoint is affected
    assert verdict("wg-b", "b") == "offline"  # every control failed: our own network is down
    assert (
        value(
            "vpnwatch_verdict",
            {"target": "ctl-b", "protocol": "tcp", "site": "b", "vpnwatch_verdict": "offline"},
        )
        is None
    )
    metrics.observe(wg_b, ok("wg-b", 0.01))
    assert verdict("wg-b", "b") == "ok"


def test_local_errors_are_the_monitors_own_and_never_an_endpoints_failure():
    metrics = Metrics()
    target = job("fra")
    metrics.configure([target])
    metrics.observe(target, ok("fra", 0.01))
    metrics.local_error(LocalReason.FILE_DESCRIPTORS)
    metrics.local_error(LocalReason.FILE_DESCRIPTORS)
    metrics.local_error(LocalReason.INTERNAL)
    value = registry_with(metrics).get_sample_value
    assert value("vpnwatch_probe_errors_total", {"reason": "file_descriptors"}) == 2
    assert value("vpnwatch_probe_errors_total", {"reason": "internal"}) == 1
    # Every reason is exported from the start, so increase() sees the first one.
    assert value("vpnwatch_probe_errors_total", {"reason": "clock"}) == 0
    labels = {"target": "fra", "protocol": "wireguard"}
    assert value("vpnwatch_probes_total", labels) == 1
    assert value("vpnwatch_probe_success", labels) == 1


def staged(
    name: str, ok_: bool, *stages: tuple[str, float], not_after: float | None = None
) -> Result:
    failure = None if ok_ else Failure.TIMEOUT
    duration = 5.0 if failure else stages[-1][1]
    stage = stages[-1][0] if ok_ else "handshake"
    return Result(
        name, "openvpn", ok_, failure, stage, stages, duration, certificate_not_after=not_after
    )


def test_every_probe_has_a_duration_and_each_stage_its_own():
    metrics = Metrics()
    j = job("ovpn")
    metrics.configure([j])
    metrics.observe(j, staged("ovpn", True, ("reset", 0.004), ("tls", 0.04), ("auth", 0.3)))
    metrics.observe(j, staged("ovpn", False, ("reset", 0.002)))  # timed out after the reset
    value = registry_with(metrics).get_sample_value
    labels = {"target": "ovpn", "protocol": "wireguard"}
    assert value("vpnwatch_probe_duration_seconds_count", labels) == 2  # the failed one too
    assert value("vpnwatch_probe_duration_seconds_bucket", {**labels, "le": "2.5"}) == 1
    assert value("vpnwatch_probe_duration_seconds_sum", labels) == 5.3
    assert value("vpnwatch_handshake_duration_seconds_count", labels) == 1  # successes only

    def stage(name: str, suffix: str, **extra: str) -> float | None:
        return value(
            f"vpnwatch_probe_stage_duration_seconds_{suffix}", {**labels, "stage": name, **extra}
        )

    assert stage("reset", "count") == 2
    assert stage("tls", "count") == stage("auth", "count") == 1
    assert stage("tls", "sum") == pytest.approx(0.036)  # from the reset to the TLS handshake
    assert stage("auth", "sum") == pytest.approx(0.26)
    assert stage("auth", "bucket", le="0.25") == 0 and stage("auth", "bucket", le="0.5") == 1
    assert stage("handshake", "count") is None  # the stage that failed was never reached


def test_the_last_certificate_seen_is_exported_until_a_new_one_is():
    metrics = Metrics()
    j, plain = job("ovpn"), job("wg")
    metrics.configure([j, plain])
    metrics.observe(j, staged("ovpn", True, ("tls", 0.04), not_after=1_900_000_000.0))
    metrics.observe(j, staged("ovpn", False, ("reset", 0.002)))  # failed before the certificate
    metrics.observe(plain, ok("wg", 0.01))
    value = registry_with(metrics).get_sample_value
    expiry = "vpnwatch_certificate_expiry_timestamp_seconds"
    assert value(expiry, {"target": "ovpn", "protocol": "wireguard"}) == 1_900_000_000.0
    assert value(expiry, {"target": "wg", "protocol": "wireguard"}) is None
    metrics.observe(j, staged("ovpn", True, ("tls", 0.04), not_after=1_950_000_000.0))
    assert (
        registry_with(metrics).get_sample_value(expiry, {"target": "ovpn", "protocol": "wireguard"})
        == 1_950_000_000.0
    )


def test_openmetrics_types_units_and_parse_with_the_client_library():
    metrics = Metrics()
    j = job("ovpn", site="a")
    metrics.configure([j, control("ctl", "a")])
    metrics.observe(j, staged("ovpn", True, ("tls", 0.04), not_after=1_900_000_000.0))
    text = metrics.exposition(Format.OPENMETRICS) + "# EOF\n"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["vpnwatch_target"].type == "info"
    assert families["vpnwatch_verdict"].type == "stateset"
    states = {s.labels["vpnwatch_verdict"]: s.value for s in families["vpnwatch_verdict"].samples}
    assert states == {"ok": 1, "degraded": 0, "failing": 0, "offline": 0}
    assert families["vpnwatch_build"].type == "info"
    for name in (
        "vpnwatch_handshake_duration_seconds", "vpnwatch_probe_duration_seconds",
        "vpnwatch_probe_stage_duration_seconds", "vpnwatch_schedule_lateness_seconds",
    ):  # fmt: skip
        assert (families[name].type, families[name].unit) == ("histogram", "seconds"), name
    for name in (
        "vpnwatch_last_success_timestamp_seconds",
        "vpnwatch_certificate_expiry_timestamp_seconds",
        "vpnwatch_config_last_reload_success_timestamp_seconds",
    ):
        assert (families[name].type, families[name].unit) == ("gauge", "seconds"), name
    assert families["vpnwatch_probes"].type == "counter"


def test_a_new_label_reaches_every_series_and_a_new_result_every_cached_line():
    metrics = Metrics()
    a = job("a")
    metrics.configure([a])
    metrics.observe(a, ok("a", 0.01))
    value = registry_with(metrics).get_sample_value
    assert value("vpnwatch_probes_total", {"target": "a", "protocol": "wireguard"}) == 1
    metrics.configure([a, job("b", region="eu")])  # a keeps its counters, gains region=""
    assert value("vpnwatch_probes_total", {"target": "a", "protocol": "wireguard"}) is None
    labels = {"target": "a", "protocol": "wireguard", "region": ""}
    assert value("vpnwatch_probes_total", labels) == 1
    metrics.observe(a, failed("a", Failure.RESET))
    assert value("vpnwatch_probes_total", labels) == 2
    assert value("vpnwatch_probe_success", labels) == 0


def test_label_values_are_escaped_as_the_formats_require():
    metrics = Metrics()
    # Labels refuse line breaks; "%" must pass the templates that write histograms and verdicts.
    odd = job("odd", provider='a "quoted" \\ name at 100%s %d')
    metrics.configure([odd])
    metrics.observe(odd, ok("odd", 0.01))
    samples = [s for f in text_families(metrics.exposition()) for s in f.samples]
    (provider,) = {s.labels["provider"] for s in samples if "provider" in s.labels}
    assert provider == odd.target.labels["provider"]
    names = {s.name for s in samples if s.labels.get("provider") == provider}
    assert {"vpnwatch_handshake_duration_seconds_bucket", "vpnwatch_verdict"} <= names


@pytest.mark.parametrize(
    ("accept", "parse"),
    [
        ("text/plain;version=0.0.4", text_families),
        ("application/openmetrics-text;version=1.0.0", text_string_to_metric_families),
    ],
)
async def test_a_scrape_gets_the_format_and_encoding_it_asks_for(accept, parse):
    metrics = Metrics()
    j = job("wg")
    metrics.configure([j])
    metrics.observe(j, ok("wg", 0.01))
    request = make_mocked_request("GET", "/metrics", headers={"Accept": accept, **GZIP})
    answer = await build_app(metrics, None).router.resolve(request)
    response = await answer.handler(request)
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(response.body).decode()
    names = {f.name for f in parse(text)}
    assert {"process_cpu_seconds", "vpnwatch_probes", "vpnwatch_verdict"} <= names
    assert response.headers["Content-Type"].split(";")[0] == accept.split(";")[0]


async def test_a_scrape_is_written_in_slices_that_let_probes_run_between_them():
    metrics = Metrics()
    jobs = [job(f"t{i}") for i in range(3 * SLICE)]
    metrics.configure(jobs)
    for j in jobs:
        metrics.observe(j, ok(j.name, 0.01))
    stale_when_a_probe_ran: list[int] = []

    async def probe() -> None:  # what a probe's task does meanwhile: run, and add a result
        stale_when_a_probe_ran.append(sum(s.written is None for s in metrics.targets.values()))
        metrics.observe(jobs[-1], failed(jobs[-1].name, Failure.TIMEOUT))

    running = asyncio.get_running_loop().create_task(probe())
    text = "".join(await metrics.sliced_exposition())
    await running
    assert 0 < stale_when_a_probe_ran[0] < len(jobs)  # it ran mid-way through the writing
    probes = {
        s.labels["target"]: s.value
        for f in text_families(text)
        for s in f.samples
        if s.name == "vpnwatch_probes_total"
    }
    assert probes == {j.name: 2 if j is jobs[-1] else 1 for j in jobs}  # the late result too
    assert text.count("# HELP vpnwatch_probes_total ") == 1
