"""Every metric vpnwatch exports, derived from Results in this one place.

The collector builds fresh metric families on each scrape from per-target state, so a target removed
by a reload simply stops appearing, and label sets can differ between reloads without leftover
series. Every series of a family carries the same label names: a target lacking one of the user
labels another target sets gets an empty value, as Prometheus treats a missing label.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector

from vpnwatch import __version__
from vpnwatch.jobs import Job
from vpnwatch.result import LocalReason, Result
from vpnwatch.verdict import Verdict, judge

if TYPE_CHECKING:
    from vpnwatch.importers.subscription import SubscriptionState

#: Resolve handshakes from 1 ms (loopback, a LAN) to 10 s (a throttled path on another continent).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: How late probes start against their schedule: from on time to a monitor that cannot keep up.
LATENESS_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0,
)  # fmt: skip
#: How many recent outcomes /api/targets computes its success ratio over.
RECENT = 100


@dataclass
class Buckets:
    """A histogram's state: counts per bucket (the last one is +Inf) and the sum observed."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, count) pairs as a Prometheus histogram exposes them."""
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets


@dataclass
class TargetStats:
    """What has been observed of one target since it was (re)configured."""

    job: Job
    probes: int = 0
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    last: Result | None = None
    last_success: float | None = None
    durations: Buckets = field(default_factory=lambda: Buckets(DURATION_BUCKETS))
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=RECENT))
    probe_durations: Buckets = field(default_factory=lambda: Buckets(DURATION_BUCKETS))
    stage_durations: dict[str, Buckets] = field(default_factory=dict)
    certificate_not_after: float | None = None

    def observe(self, result: Result, wall_time: float) -> None:
        self.probes += 1
        self.last = result
        self.recent.append(result.ok)
        self.probe_durations.observe(result.duration)
        for stage, took in stage_times(result.stages):
            self.stage_durations.setdefault(stage, Buckets(DURATION_BUCKETS)).observe(took)
        if result.certificate_not_after is not None:
            self.certificate_not_after = result.certificate_not_after
        if result.ok:
            self.last_success = wall_time
            self.durations.observe(result.duration)
        else:
            assert result.failure is not None
            self.failures[result.failure.value, result.stage] += 1

    @property
    def success_ratio(self) -> float | None:
        return sum(self.recent) / len(self.recent) if self.recent else None


def stage_times(stages: Iterable[tuple[str, float]]) -> Iterator[tuple[str, float]]:
    """Each stage reached with the time it took itself, from the one before (or the start).

    A stage reached twice (a retransmitted handshake) counts as two observations: each is a wait.
    """
    before = 0.0
    for stage, at in stages:
        yield stage, max(at - before, 0.0)
        before = at


class Metrics(Collector):
    """Holds per-target state and turns it into metric families at scrape time."""

    def __init__(self) -> None:
        self.targets: dict[str, TargetStats] = {}
        self._subscriptions: tuple[SubscriptionState, ...] = ()
        self.reload_ok = True
        self.reload_success_time = time.time()
        self.lateness = Buckets(LATENESS_BUCKETS)
        self.errors: Counter[LocalReason] = Counter({reason: 0 for reason in LocalReason})

    def started(self, lateness: float) -> None:
        """A probe started ``lateness`` seconds after it was due (waiting for a free slot)."""
        self.lateness.observe(lateness)

    def configure(self, jobs: Sequence[Job]) -> None:
        """Adopt a new job list: unchanged targets keep their counters, removed ones vanish."""
        previous, self.targets = self.targets, {}
        for job in jobs:
            stats = previous.get(job.name)
            self.targets[job.name] = (
                stats if stats is not None and stats.job == job else TargetStats(job)
            )

    def subscriptions(self, states: Sequence[SubscriptionState]) -> None:
        """The subscriptions' states after a load: their fetches, apart from the proxies'."""
        self._subscriptions = tuple(states)

    def reloaded(self, ok: bool) -> None:
        self.reload_ok = ok
        if ok:
            self.reload_success_time = time.time()

    def observe(self, job: Job, result: Result) -> None:
        stats = self.targets.get(job.name)
        if stats is not None and stats.job == job:  # else the target was reloaded away meanwhile
            stats.observe(result, time.time())

    def local_error(self, reason: LocalReason) -> None:
        """A probe made no Result: this host's trouble or a bug, not the endpoint's."""
        self.errors[reason] += 1

    def collect(self) -> Iterator[Metric]:
        yield from self.target_families()
        yield from self._self_metrics()
        yield from self._subscription_metrics()

    def target_families(self) -> Iterator[Metric]:
        """The families about targets, without those about the monitor itself."""
        stats = list(self.targets.values())
        extra = sorted({key for s in stats for key in s.job.target.labels})
        base = ["target", "protocol", *extra]

        def values(s: TargetStats) -> list[str]:
            target = s.job.target
            return [target.name, target.protocol, *(target.labels.get(key, "") for key in extra)]

        probes = CounterMetricFamily("vpnwatch_probes", "Probes completed.", labels=base)
        failures = CounterMetricFamily(
            "vpnwatch_probe_failures",
            "Failed probes by failure class and the stage that failed.",
            labels=[*base, "failure", "stage"],
        )
        success = GaugeMetricFamily(
            "vpnwatch_probe_success",
            "Whether the last probe succeeded (1) or failed (0).",
            labels=base,
        )
        durations = HistogramMetricFamily(
            "vpnwatch_handshake_duration_seconds",
            "Time from the first packet to a verified handshake (or the deepest stage probed).",
            labels=base,
            unit="seconds",
        )
        probe_durations = HistogramMetricFamily(
            "vpnwatch_probe_duration_seconds",
            "How long each probe took, failed ones included (a timeout takes the whole timeout).",
            labels=base,
            unit="seconds",
        )
        stage_durations = HistogramMetricFamily(
            "vpnwatch_probe_stage_duration_seconds",
            "Time each stage a probe reached took, from the stage before it.",
            labels=[*base, "stage"],
            unit="seconds",
        )
        last_success = GaugeMetricFamily(
            "vpnwatch_last_success_timestamp_seconds",
            "Unix time of the last successful probe.",
            labels=base,
            unit="seconds",
        )
        certificate_expiry = GaugeMetricFamily(
            "vpnwatch_certificate_expiry_timestamp_seconds",
            "Unix time the server certificate the last verifying probe accepted stops being valid.",
            labels=base,
            unit="seconds",
        )
        info = InfoMetricFamily(
            "vpnwatch_target",
            "Configured targets, with their endpoint and transport.",
            labels=base,
        )
        verdicts = StateSetMetricFamily(
            "vpnwatch_verdict",
            "The target's state judged against its site's controls: ok, failing or offline.",
            labels=base,
        )
        controls = _controls_by_site(stats)

        for s in stats:
            labels = values(s)
            target = s.job.target
            probes.add_metric(labels, s.probes)
            info.add_metric(
                labels,
                {"endpoint": target.endpoint, "transport": target.transport, "role": target.role},
            )
            for (failure, stage), count in sorted(s.failures.items()):
                failures.add_metric([*labels, failure, stage], count)
            if s.last is not None:
                success.add_metric(labels, float(s.last.ok))
                if target.role == "target":
                    verdict = judge(s.last.ok, controls.get(target.labels.get("site", ""), ()))
                    verdicts.add_metric(
                        labels, {state.value: state is verdict for state in Verdict}
                    )
            if s.last_success is not None:
                last_success.add_metric(labels, s.last_success)
            if s.certificate_not_after is not None:
                certificate_expiry.add_metric(labels, s.certificate_not_after)
            durations.add_metric(labels, s.durations.cumulative(), s.durations.total)
            probe_durations.add_metric(
                labels, s.probe_durations.cumulative(), s.probe_durations.total
            )
            for stage, buckets in sorted(s.stage_durations.items()):
                stage_durations.add_metric([*labels, stage], buckets.cumulative(), buckets.total)
        yield from (probes, failures, success, durations, probe_durations, stage_durations)
        yield from (last_success, certificate_expiry, info, verdicts)

    def _self_metrics(self) -> Iterable[Metric]:
        reload_ok = GaugeMetricFamily(
            "vpnwatch_config_last_reload_successful",
            "Whether the last configuration reload succeeded.",
        )
        reload_ok.add_metric([], float(self.reload_ok))
        reload_time = GaugeMetricFamily(
            "vpnwatch_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
            unit="seconds",
        )
        reload_time.add_metric([], self.reload_success_time)
        build = InfoMetricFamily("vpnwatch_build", "vpnwatch's version.")
        build.add_metric([], {"version": __version__})
        lateness = HistogramMetricFamily(
            "vpnwatch_schedule_lateness_seconds",
            "How long after its due time each probe started: a monitor that cannot keep up.",
            unit="seconds",
        )
        lateness.add_metric([], self.lateness.cumulative(), self.lateness.total)
        errors = CounterMetricFamily(
            "vpnwatch_probe_errors",
            "Probes this host could not carry out, by what it ran out of or refused (internal: "
            "a bug): vpnwatch's own trouble, never counted against an endpoint.",
            labels=["reason"],
        )
        for reason, count in self.errors.items():
            errors.add_metric([reason.value], count)
        return (reload_ok, reload_time, build, lateness, errors)

    def _subscription_metrics(self) -> Iterable[Metric]:
        """Each subscription's last fetch: the list's own trouble, never its proxies' failure."""
        label = ["subscription"]
        up = GaugeMetricFamily(
            "vpnwatch_subscription_fetch_success",
            "Whether the last fetch of the subscription succeeded (0: its last good list is"
            " still probed).",
            labels=label,
        )
        last = GaugeMetricFamily(
            "vpnwatch_subscription_last_success_timestamp_seconds",
            "Unix time of the subscription's last successful fetch.",
            labels=label,
            unit="seconds",
        )
        failures = CounterMetricFamily(
            "vpnwatch_subscription_fetch_failures",
            "Failed fetches of the subscription since vpnwatch started.",
            labels=label,
        )
        targets = GaugeMetricFamily(
            "vpnwatch_subscription_targets",
            "Targets the subscription's list (the last good one) gives.",
            labels=label,
        )
        for state in self._subscriptions:
            up.add_metric([state.name], float(state.ok))
            if state.last_success is not None:
                last.add_metric([state.name], state.last_success)
            failures.add_metric([state.name], state.failures)
            count = len(state.imported.targets) if state.imported is not None else 0
            targets.add_metric([state.name], count)
        return (up, last, failures, targets)


def _controls_by_site(stats: Iterable[TargetStats]) -> dict[str, list[bool]]:
    """Site → the last outcome of each of its control targets that has been probed."""
    sites: dict[str, list[bool]] = {}
    for s in stats:
        if s.job.target.role == "control" and s.last is not None:
            sites.setdefault(s.job.target.labels.get("site", ""), []).append(s.last.ok)
    return sites
