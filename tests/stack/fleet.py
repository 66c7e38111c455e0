"""A small simulated fleet, written as an OpenMetrics backfill for a real Prometheus.

It has the shape of what vpnwatch and Prometheus store together: every metric of the exporter's
contract with its labels, plus the `up`, `job`, `instance` and `vantage` that the scrape adds. The
story in the data is the one the dashboard and alerts are built to tell:

- ``fra-home``: everything works, but the OpenVPN target fails one probe in four (reset at tls);
- ``tehran-isp``: WireGuard is blocked (every handshake times out), the other protocols work;
- ``kabul-mobile``: the vantage goes offline for the middle fifth of the history, controls too.

Every VPN target's successful probes also carry a tunnel test (as if tunnel tests ran at each
probe): ten echoes, all back, except through ``ovpn-fra``, which loses three in ten and is marked
degraded for loss (its verdict keeps the handshake's story).

The histogram buckets are the exporter's own, so quantiles look like the real thing.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from vpnwatch.metrics import DURATION_BUCKETS, LATENESS_BUCKETS, RTT_BUCKETS

JOB = "vpnwatch"
INSTANCE = "vpnwatch:10877"
VERSION = "0.1.0"
PROBE_INTERVAL = 60.0
SCRAPE_INTERVAL = 30.0

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SimTarget:
    name: str
    protocol: str
    endpoint: str
    transport: str
    role: str
    labels: dict[str, str]
    latency: float  # seconds, before the per-vantage factor

    def key_labels(self) -> dict[str, str]:
        return {"target": self.name, "protocol": self.protocol, **self.labels}


TARGETS = (
    SimTarget("wg-fra", "wireguard", "198.18.0.2:51820", "udp", "target",
              {"provider": "acme", "region": "eu", "site": "fra"}, 0.030),
    SimTarget("wg-ams", "wireguard", "198.18.0.3:51820", "udp", "target",
              {"provider": "acme", "region": "eu", "site": "ams"}, 0.045),
    SimTarget("ovpn-fra", "openvpn", "198.18.0.2:1194", "udp", "target",
              {"provider": "acme", "region": "eu", "site": "fra"}, 0.400),
    SimTarget("obfs4-nyc", "obfs4", "198.18.0.4:443", "tcp", "target",
              {"provider": "bridgeco", "region": "us", "site": "nyc"}, 0.250),
    SimTarget("ctl-tcp-fra", "tcp", "198.18.0.2:443", "tcp", "control",
              {"site": "fra"}, 0.020),
)  # fmt: skip
VANTAGES = {"fra-home": 1.0, "tehran-isp": 3.0, "kabul-mobile": 2.0}
#: When the OpenVPN servers' certificate expires: 20 days after the fleet's fixed histories end.
END_OF_CERTIFICATE = 1_717_243_200.0 + 20 * 86400


@dataclass(frozen=True)
class Outcome:
    ok: bool
    failure: str = ""
    stage: str = ""
    duration: float = 0.0


def outcome(vantage: str, target: SimTarget, index: int, offline: bool) -> Outcome:
    """What probe number ``index`` of ``target`` from ``vantage`` found."""
    if offline:
        return Outcome(ok=False, failure="unreachable", stage="handshake")
    if vantage == "tehran-isp" and target.protocol == "wireguard":
        return Outcome(ok=False, failure="timeout", stage="handshake")
    if vantage == "fra-home" and target.protocol == "openvpn" and index % 4 == 3:
        return Outcome(ok=False, failure="reset", stage="tls")
    wobble = 1.0 + 0.6 * ((index * 7) % 5) / 5
    return Outcome(ok=True, duration=target.latency * VANTAGES[vantage] * wobble)


@dataclass
class TargetState:
    """The exporter's counters for one target, advanced probe by probe."""

    probes: int = 0
    failures: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0
    probe_buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    probe_duration_sum: float = 0.0
    last: Outcome | None = None
    last_success: float | None = None
    tunnel_tests: int = 0
    echoes_sent: int = 0
    echoes_received: int = 0
    rtt_buckets: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS) + 1))
    rtt_sum: float = 0.0

    def observe(self, result: Outcome, when: float, lossy: bool = False) -> None:
        self.probes += 1
        self.last = result
        if result.ok:
            self.tunnel_tests += 1
            self.echoes_sent += 10
            self.echoes_received += 7 if lossy else 10
            for _ in range(7 if lossy else 10):
                self.rtt_buckets[bisect.bisect_left(RTT_BUCKETS, result.duration / 2)] += 1
                self.rtt_sum += result.duration / 2
        # A failed probe lasts until its timeout (5 s) or the reset that ends it (at once).
        took = result.duration if result.ok else 5.0 if result.failure == "timeout" else 0.05
        self.probe_buckets[bisect.bisect_left(DURATION_BUCKETS, took)] += 1
        self.probe_duration_sum += took
        if result.ok:
            self.last_success = when
            self.buckets[bisect.bisect_left(DURATION_BUCKETS, result.duration)] += 1
            self.duration_sum += result.duration
        else:
            self.failures[(result.failure, result.stage)] += 1


class Families:
    """Samples grouped the way OpenMetrics wants them: by family, then by series, in time order."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.series: dict[str, dict[tuple[str, Labels], list[tuple[float, float]]]] = {}

    def add(
        self, family: str, kind: str, sample: str, labels: dict[str, str], when: float, value: float
    ) -> None:
        self.types.setdefault(family, kind)
        key = (sample, tuple(sorted((k, v) for k, v in labels.items() if v)))
        self.series.setdefault(family, {}).setdefault(key, []).append((when, value))

    def render(self, *, latest_only: bool = False) -> str:
        """Every sample with its timestamp (a backfill), or each series' latest value without
        one (what an exporter serves at a scrape)."""
        lines: list[str] = []
        for family, kind in self.types.items():
            lines.append(f"# TYPE {family} {kind}")
            for (sample, labels), points in self.series[family].items():
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                if latest_only:
                    lines.append(f"{sample}{{{label_text}}} {_number(points[-1][1])}")
                    continue
                for when, value in points:
                    lines.append(f"{sample}{{{label_text}}} {_number(value)} {when:.3f}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def openmetrics_history(start: float, end: float) -> str:
    """The fleet's series from ``start`` to ``end`` (Unix seconds), one scrape per 30 s, with
    the labels and the ``up`` series that scraping adds."""
    families = Families()
    scrapes = [start + i * SCRAPE_INTERVAL for i in range(int((end - start) // SCRAPE_INTERVAL))]
    for vantage in VANTAGES:
        scope = {"job": JOB, "instance": INSTANCE, "vantage": vantage}
        _simulate(families, vantage, scope, start, scrapes, PROBE_INTERVAL)
    return families.render()


def exposition(
    vantage: str, start: float, now: float, probe_interval: float = PROBE_INTERVAL
) -> str:
    """What vpnwatch at ``vantage``, probing since ``start``, serves on /metrics at ``now``."""
    families = Families()
    _simulate(families, vantage, {}, start, [now], probe_interval)
    return families.render(latest_only=True)


def _simulate(
    families: Families,
    vantage: str,
    scope: dict[str, str],
    start: float,
    scrapes: list[float],
    probe_interval: float,
) -> None:
    """Probe the fleet from ``vantage`` and record what each scrape sees. An empty ``scope``
    means unscraped: no job, instance or vantage labels, and no ``up``."""
    outage = (start + 0.4 * (scrapes[-1] - start), start + 0.6 * (scrapes[-1] - start))
    states = {t.name: TargetState() for t in TARGETS}
    for when in scrapes:
        offline = vantage == "kabul-mobile" and outage[0] <= when < outage[1]
        for number, target in enumerate(TARGETS):
            state = states[target.name]
            # Probes are spread over the interval by a fixed per-target offset.
            first = start + number * probe_interval / len(TARGETS)
            due = 0 if when < first else math.floor((when - first) / probe_interval) + 1
            while state.probes < due:
                stamp = first + state.probes * probe_interval
                lossy = target.name == "ovpn-fra"
                state.observe(outcome(vantage, target, state.probes, offline), stamp, lossy)
            labels = {**scope, **target.key_labels()}
            _target_samples(families, labels, target, state, when, offline)
        if scope:
            families.add("up", "gauge", "up", scope, when, 1)
        _monitor_samples(families, scope, when, start)


def _target_samples(
    families: Families,
    labels: dict[str, str],
    target: SimTarget,
    state: TargetState,
    when: float,
    offline: bool,
) -> None:
    info = {
        **labels,
        "endpoint": target.endpoint,
        "transport": target.transport,
        "role": target.role,
    }
    families.add("vpnwatch_target", "info", "vpnwatch_target_info", info, when, 1)
    if target.protocol == "openvpn":  # the certificate its server presented, valid 20 more days
        expiry = "vpnwatch_certificate_expiry_timestamp_seconds"
        families.add(expiry, "gauge", expiry, labels, when, END_OF_CERTIFICATE)
    families.add("vpnwatch_probes", "counter", "vpnwatch_probes_total", labels, when, state.probes)
    families.add("vpnwatch_probe_errors", "counter", "vpnwatch_probe_errors_total", labels, when, 0)
    for (failure, stage), count in state.failures.items():
        failed = {**labels, "failure": failure, "stage": stage}
        families.add(
            "vpnwatch_probe_failures",
            "counter",
            "vpnwatch_probe_failures_total",
            failed,
            when,
            count,
        )
    if state.last is None:
        return
    families.add(
        "vpnwatch_probe_success",
        "gauge",
        "vpnwatch_probe_success",
        labels,
        when,
        float(state.last.ok),
    )
    # As the exporter does, only targets get a verdict; controls are what it is judged against.
    verdict = "ok" if state.last.ok else "offline" if offline else "failing"
    for name in ("ok", "degraded", "failing", "offline") if target.role == "target" else ():
        families.add(
            "vpnwatch_verdict",
            "stateset",
            "vpnwatch_verdict",
            {**labels, "vpnwatch_verdict": name},
            when,
            float(name == verdict),
        )
    histograms = (
        ("vpnwatch_handshake_duration_seconds", labels, state.buckets, state.duration_sum),
        ("vpnwatch_probe_duration_seconds", labels, state.probe_buckets, state.probe_duration_sum),
        # Every success went through two stages of equal length: a round trip and the handshake.
        *(
            ("vpnwatch_probe_stage_duration_seconds", {**labels, "stage": stage},
             state.buckets, state.duration_sum / 2)
            for stage in ("connect", "handshake")
        ),
    )  # fmt: skip
    for histogram, histogram_labels, buckets, total in histograms:
        _histogram(families, histogram, histogram_labels, buckets, total, when)
    if state.tunnel_tests:
        _tunnel_samples(families, labels, target, state, when)
    if state.last_success is not None:
        families.add(
            "vpnwatch_last_success_timestamp_seconds",
            "gauge",
            "vpnwatch_last_success_timestamp_seconds",
            labels,
            when,
            state.last_success,
        )


def _tunnel_samples(
    families: Families, labels: dict[str, str], target: SimTarget, state: TargetState, when: float
) -> None:
    """The tunnel families, as the exporter writes them after a target's tunnel tests."""
    lossy = target.name == "ovpn-fra"
    for family, kind, value in (
        ("vpnwatch_tunnel_tests", "counter", state.tunnel_tests),
        ("vpnwatch_tunnel_cuts", "counter", 0),
        ("vpnwatch_tunnel_success", "gauge", 1),
        ("vpnwatch_tunnel_goodput_bytes_per_second", "gauge", 16_000 / target.latency),
        ("vpnwatch_tunnel_held_seconds", "gauge", 5.0),
    ):
        sample = f"{family}_total" if kind == "counter" else family
        families.add(family, kind, sample, labels, when, value)
    for family, count in (
        ("vpnwatch_tunnel_echoes_sent", state.echoes_sent),
        ("vpnwatch_tunnel_echoes_received", state.echoes_received),
    ):
        for phase in ("train", "burst", "hold"):
            value = count if phase == "train" else 0
            phased = {**labels, "phase": phase}
            families.add(family, "counter", f"{family}_total", phased, when, value)
    for reason in ("loss", "rtt", "jitter", "goodput", "cut"):
        degraded = {**labels, "reason": reason}
        value = float(lossy and reason == "loss")
        families.add(
            "vpnwatch_tunnel_degraded", "gauge", "vpnwatch_tunnel_degraded", degraded, when, value
        )
    running = 0
    name = "vpnwatch_tunnel_rtt_seconds"
    for bound, count in zip([*map(str, RTT_BUCKETS), "+Inf"], state.rtt_buckets, strict=True):
        running += count
        families.add(name, "histogram", f"{name}_bucket", {**labels, "le": bound}, when, running)
    families.add(name, "histogram", f"{name}_sum", labels, when, state.rtt_sum)
    families.add(name, "histogram", f"{name}_count", labels, when, running)


def _histogram(
    families: Families,
    name: str,
    labels: dict[str, str],
    buckets: list[int],
    total: float,
    when: float,
) -> None:
    running = 0
    for bound, count in zip([*map(str, DURATION_BUCKETS), "+Inf"], buckets, strict=True):
        running += count
        families.add(name, "histogram", f"{name}_bucket", {**labels, "le": bound}, when, running)
    families.add(name, "histogram", f"{name}_sum", labels, when, total)
    families.add(name, "histogram", f"{name}_count", labels, when, running)


def _monitor_samples(families: Families, scope: dict[str, str], when: float, start: float) -> None:
    uptime = when - start
    gauges: Iterable[tuple[str, float]] = (
        ("vpnwatch_config_last_reload_successful", 1),
        ("vpnwatch_config_last_reload_success_timestamp_seconds", start),
        ("process_resident_memory_bytes", 48e6 + 1e4 * (uptime % 600)),
        ("process_start_time_seconds", start),
    )
    for name, value in gauges:
        families.add(name, "gauge", name, scope, when, value)
    families.add(
        "process_cpu_seconds", "counter", "process_cpu_seconds_total", scope, when, 0.004 * uptime
    )
    families.add(
        "vpnwatch_build", "info", "vpnwatch_build_info", {**scope, "version": VERSION}, when, 1
    )
    # One probe starts a second: most on time, a few behind a full concurrency cap.
    started = int(uptime)
    lateness = "vpnwatch_schedule_lateness_seconds"
    on_time = {"0.001": 0.5, "0.005": 0.9, "0.01": 0.97}
    for bound in [*map(str, LATENESS_BUCKETS), "+Inf"]:
        count = int(started * on_time.get(bound, 1.0))
        families.add(
            lateness, "histogram", f"{lateness}_bucket", {**scope, "le": bound}, when, count
        )
    families.add(lateness, "histogram", f"{lateness}_sum", scope, when, 0.004 * started)
    families.add(lateness, "histogram", f"{lateness}_count", scope, when, started)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))
