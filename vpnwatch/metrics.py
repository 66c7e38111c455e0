"""Every metric vpnwatch exports, derived from Results in this one place.

Each scrape writes the exposition from per-target state, so a target removed by a reload simply
stops appearing, and label sets can differ between reloads without leftover series. A target's
lines are written once after each of its results and reused by the scrapes until the next one
(:mod:`vpnwatch.exposition` says why); a scrape does its work a slice of targets at a time,
letting the event loop run the probes between slices. Every series of a family carries the
same label names: a target lacking one of the user labels another target sets gets an empty value,
as Prometheus treats a missing label.

A tunnel test's Result (one that carries a :class:`~vpnwatch.result.TunnelQuality`) feeds the
``vpnwatch_tunnel_*`` families, not the handshake ones: a censor that drops only data leaves the
handshake metrics as they were, and the tunnel's own say what it did. The verdict takes both.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING

from vpnwatch import __version__
from vpnwatch.exposition import Family, Format, Kind, histogram, label_value, labels, sample
from vpnwatch.jobs import Job
from vpnwatch.result import Degradation, LocalReason, Result
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
#: Round trips through a tunnel: from a LAN to a throttled, buffer-bloated path.
RTT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: The phases of a tunnel test (a label of the echo counters).
PHASES = ("train", "burst", "hold")
#: How many recent outcomes /api/targets computes its success ratio over.
RECENT = 100

PROBES = Family("vpnwatch_probes", Kind.COUNTER, "Probes completed.")
FAILURES = Family(
    "vpnwatch_probe_failures",
    Kind.COUNTER,
    "Failed probes by failure class and the stage that failed.",
)
SUCCESS = Family(
    "vpnwatch_probe_success", Kind.GAUGE, "Whether the last probe succeeded (1) or failed (0)."
)
HANDSHAKE_DURATIONS = Family(
    "vpnwatch_handshake_duration_seconds",
    Kind.HISTOGRAM,
    "Time from the first packet to a verified handshake (or the deepest stage probed).",
    "seconds",
)
PROBE_DURATIONS = Family(
    "vpnwatch_probe_duration_seconds",
    Kind.HISTOGRAM,
    "How long each probe took, failed ones included (a timeout takes the whole timeout).",
    "seconds",
)
STAGE_DURATIONS = Family(
    "vpnwatch_probe_stage_duration_seconds",
    Kind.HISTOGRAM,
    "Time each stage a probe reached took, from the stage before it.",
    "seconds",
)
LAST_SUCCESS = Family(
    "vpnwatch_last_success_timestamp_seconds",
    Kind.GAUGE,
    "Unix time of the last successful probe.",
    "seconds",
)
CERTIFICATE_EXPIRY = Family(
    "vpnwatch_certificate_expiry_timestamp_seconds",
    Kind.GAUGE,
    "Unix time the server certificate the last verifying probe accepted stops being valid.",
    "seconds",
)
TARGET_INFO = Family(
    "vpnwatch_target", Kind.INFO, "Configured targets, with their endpoint and transport."
)
TUNNEL_TESTS = Family(
    "vpnwatch_tunnel_tests",
    Kind.COUNTER,
    "Tunnel tests that reached the tunnel (a verified handshake, then echoes sent).",
)
TUNNEL_SUCCESS = Family(
    "vpnwatch_tunnel_success",
    Kind.GAUGE,
    "Whether the last tunnel test carried traffic (1) or nothing came back (0).",
)
TUNNEL_ECHOES_SENT = Family(
    "vpnwatch_tunnel_echoes_sent",
    Kind.COUNTER,
    "Echoes sent through the tunnel, by phase (train: loss and RTT; burst: goodput; hold).",
)
TUNNEL_ECHOES_RECEIVED = Family(
    "vpnwatch_tunnel_echoes_received",
    Kind.COUNTER,
    "Echo replies that came back through the tunnel and verified, by phase.",
)
TUNNEL_RTT = Family(
    "vpnwatch_tunnel_rtt_seconds",
    Kind.HISTOGRAM,
    "Round trip of each answered echo of the train, through the tunnel.",
    "seconds",
)
TUNNEL_GOODPUT = Family(
    "vpnwatch_tunnel_goodput_bytes_per_second",
    Kind.GAUGE,
    "Bytes per second the last tunnel test's burst came back at.",
)
TUNNEL_HELD = Family(
    "vpnwatch_tunnel_held_seconds",
    Kind.GAUGE,
    "How long the last tunnel test's session carried traffic (to its last reply).",
    "seconds",
)
TUNNEL_DEGRADED_TESTS = Family(
    "vpnwatch_tunnel_tests_degraded",
    Kind.COUNTER,
    "Tunnel tests that found the tunnel degraded (it carried traffic, beyond thresholds).",
)
TUNNEL_FAILED_TESTS = Family(
    "vpnwatch_tunnel_tests_failed",
    Kind.COUNTER,
    "Tunnel tests through which nothing came back after a verified handshake.",
)
TUNNEL_CUTS = Family(
    "vpnwatch_tunnel_cuts",
    Kind.COUNTER,
    "Tunnel tests whose session was cut: it stopped carrying traffic before the hold ended.",
)
TUNNEL_DEGRADED = Family(
    "vpnwatch_tunnel_degraded",
    Kind.GAUGE,
    "Why the last tunnel test found the tunnel degraded: 1 for each reason that applies.",
)
#: The families each target writes its lines of, in the exposition's order.
TARGET_FAMILIES = (
    PROBES,
    FAILURES,
    SUCCESS,
    HANDSHAKE_DURATIONS,
    PROBE_DURATIONS,
    STAGE_DURATIONS,
    LAST_SUCCESS,
    CERTIFICATE_EXPIRY,
    TARGET_INFO,
    TUNNEL_TESTS,
    TUNNEL_DEGRADED_TESTS,
    TUNNEL_FAILED_TESTS,
    TUNNEL_SUCCESS,
    TUNNEL_ECHOES_SENT,
    TUNNEL_ECHOES_RECEIVED,
    TUNNEL_RTT,
    TUNNEL_GOODPUT,
    TUNNEL_HELD,
    TUNNEL_CUTS,
    TUNNEL_DEGRADED,
)
VERDICTS = Family(
    "vpnwatch_verdict",
    Kind.STATESET,
    "The target's state judged against its site's controls: ok, degraded, failing or offline.",
)
SUBSCRIPTION_OK = Family(
    "vpnwatch_subscription_fetch_success",
    Kind.GAUGE,
    "Whether the last fetch of the subscription succeeded (0: its last good list is still probed).",
)
SUBSCRIPTION_SUCCESS = Family(
    "vpnwatch_subscription_last_success_timestamp_seconds",
    Kind.GAUGE,
    "Unix time of the subscription's last successful fetch.",
    "seconds",
)
SUBSCRIPTION_FAILURES = Family(
    "vpnwatch_subscription_fetch_failures",
    Kind.COUNTER,
    "Failed fetches of the subscription since vpnwatch started.",
)
SUBSCRIPTION_TARGETS = Family(
    "vpnwatch_subscription_targets",
    Kind.GAUGE,
    "Targets the subscription's list (the last good one) gives.",
)
SUBSCRIPTION_FAMILIES = (
    SUBSCRIPTION_OK,
    SUBSCRIPTION_SUCCESS,
    SUBSCRIPTION_FAILURES,
    SUBSCRIPTION_TARGETS,
)
RELOAD_OK = Family(
    "vpnwatch_config_last_reload_successful",
    Kind.GAUGE,
    "Whether the last configuration reload succeeded.",
)
RELOAD_TIME = Family(
    "vpnwatch_config_last_reload_success_timestamp_seconds",
    Kind.GAUGE,
    "Unix time of the last successful configuration load.",
    "seconds",
)
BUILD = Family("vpnwatch_build", Kind.INFO, "vpnwatch's version.")
LATENESS = Family(
    "vpnwatch_schedule_lateness_seconds",
    Kind.HISTOGRAM,
    "How long after its due time each probe started: a monitor that cannot keep up.",
    "seconds",
)
ERRORS = Family(
    "vpnwatch_probe_errors",
    Kind.COUNTER,
    "Probes this host could not carry out, by what it ran out of or refused (internal: "
    "a bug): vpnwatch's own trouble, never counted against an endpoint.",
)


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

    def exposed(self) -> tuple[tuple[str, ...], list[int], float]:
        """``le`` values (ending ``+Inf``), counts per bucket and sum, for :func:`histogram`."""
        return _le_values(self.bounds), self.counts, self.total


@functools.cache
def _le_values(bounds: tuple[float, ...]) -> tuple[str, ...]:
    return (*map(str, bounds), "+Inf")


@dataclass
class TunnelStats:
    """What the tunnel tests of one target found since it was (re)configured."""

    tests: int = 0
    degraded: int = 0
    failed: int = 0
    cuts: int = 0
    sent: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(PHASES, 0)))
    received: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(PHASES, 0)))
    rtts: Buckets = field(default_factory=lambda: Buckets(RTT_BUCKETS))
    last: Result | None = None

    def observe(self, result: Result) -> None:
        quality = result.tunnel
        assert quality is not None
        self.tests += 1
        self.degraded += bool(result.degraded)
        self.failed += not result.ok
        self.cuts += quality.cut
        self.sent.update(dict(quality.sent))
        self.received.update(dict(quality.received))
        for rtt in quality.rtts:
            self.rtts.observe(rtt)
        self.last = result


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
    tunnel: TunnelStats = field(default_factory=TunnelStats)
    #: The inside of its samples' braces, kept until the label names change; None: to write.
    inside: str | None = field(default=None, repr=False, compare=False)
    #: Its sample lines of each target family, as last written; None: to rewrite.
    written: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def observe(self, result: Result, wall_time: float) -> None:
        self.written = None
        if result.tunnel is not None:
            self.tunnel.observe(result)
            return
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

    @property
    def working(self) -> bool | None:
        """Whether the last probe and the last tunnel test both succeeded; None before any."""
        if self.last is None:
            return None
        tunnel = self.tunnel.last
        return self.last.ok and (tunnel is None or tunnel.ok)

    @property
    def degraded(self) -> bool:
        return self.tunnel.last is not None and bool(self.tunnel.last.degraded)


def stage_times(stages: Iterable[tuple[str, float]]) -> Iterator[tuple[str, float]]:
    """Each stage reached with the time it took itself, from the one before (or the start).

    A stage reached twice (a retransmitted handshake) counts as two observations: each is a wait.
    """
    before = 0.0
    for stage, at in stages:
        yield stage, max(at - before, 0.0)
        before = at


def _target_lines(stats: TargetStats, inside: str) -> tuple[str, ...]:
    """The target's samples of each of :data:`TARGET_FAMILIES`, in their order."""
    s, target = stats, stats.job.target
    failures = "".join(
        sample(FAILURES.sample, f'{inside},failure="{failure}",stage="{label_value(stage)}"', n)
        for (failure, stage), n in sorted(s.failures.items())
    )
    stages = "".join(
        histogram(
            STAGE_DURATIONS.name, f'{inside},stage="{label_value(stage)}"', *buckets.exposed()
        )
        for stage, buckets in sorted(s.stage_durations.items())
    )
    described = (target.endpoint, target.transport, target.role)
    info = labels(("endpoint", "transport", "role"), described)
    return (
        sample(PROBES.sample, inside, s.probes),
        failures,
        sample(SUCCESS.sample, inside, s.last.ok) if s.last is not None else "",
        histogram(HANDSHAKE_DURATIONS.name, inside, *s.durations.exposed()),
        histogram(PROBE_DURATIONS.name, inside, *s.probe_durations.exposed()),
        stages,
        sample(LAST_SUCCESS.sample, inside, s.last_success) if s.last_success is not None else "",
        sample(CERTIFICATE_EXPIRY.sample, inside, s.certificate_not_after)
        if s.certificate_not_after is not None
        else "",
        sample(TARGET_INFO.sample, f"{inside},{info}", 1),
        *_tunnel_lines(s.tunnel, inside),
    )


def _tunnel_lines(tunnel: TunnelStats, inside: str) -> tuple[str, ...]:
    """The target's samples of the tunnel families; nothing before its first tunnel test."""
    last = tunnel.last
    if last is None or last.tunnel is None:
        return ("",) * 11
    quality = last.tunnel

    def per_phase(family: Family, counts: Counter[str]) -> str:
        return "".join(
            sample(family.sample, f'{inside},phase="{phase}"', counts[phase]) for phase in PHASES
        )

    degraded = "".join(
        sample(TUNNEL_DEGRADED.sample, f'{inside},reason="{reason.value}"', reason in last.degraded)
        for reason in Degradation
    )
    goodput = quality.goodput
    return (
        sample(TUNNEL_TESTS.sample, inside, tunnel.tests),
        sample(TUNNEL_DEGRADED_TESTS.sample, inside, tunnel.degraded),
        sample(TUNNEL_FAILED_TESTS.sample, inside, tunnel.failed),
        sample(TUNNEL_SUCCESS.sample, inside, last.ok),
        per_phase(TUNNEL_ECHOES_SENT, tunnel.sent),
        per_phase(TUNNEL_ECHOES_RECEIVED, tunnel.received),
        histogram(TUNNEL_RTT.name, inside, *tunnel.rtts.exposed()),
        sample(TUNNEL_GOODPUT.sample, inside, goodput) if goodput is not None else "",
        sample(TUNNEL_HELD.sample, inside, quality.held_seconds),
        sample(TUNNEL_CUTS.sample, inside, tunnel.cuts),
        degraded,
    )


#: Targets per slice of a scrape's work: 5-15 ms of the event loop (a target's lines: 0.1-0.3 ms).
SLICE = 50


class Metrics:
    """Holds per-target state and writes it as an exposition at scrape time."""

    def __init__(self) -> None:
        self.targets: dict[str, TargetStats] = {}
        self._subscriptions: tuple[SubscriptionState, ...] = ()
        self.reload_ok = True
        self.reload_success_time = time.time()
        self.lateness = Buckets(LATENESS_BUCKETS)
        self.errors: Counter[LocalReason] = Counter({reason: 0 for reason in LocalReason})
        #: The user labels some target sets: every series carries all of them, in this order.
        self._extra: tuple[str, ...] = ()

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
        extra = tuple(sorted({key for s in self.targets.values() for key in s.job.target.labels}))
        if extra != self._extra:
            self._extra = extra
            for stats in self.targets.values():
                stats.inside = stats.written = None

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

    def exposition(self, form: Format = Format.TEXT) -> str:
        """Every family, about targets and about the monitor, without OpenMetrics' ``# EOF``."""
        parts: list[str] = []
        for _ in self._exposition(form, parts):
            pass
        return "".join(parts)

    async def sliced_exposition(self, form: Format = Format.TEXT) -> list[str]:
        """:meth:`exposition` in pieces, letting the probes run after each slice of targets.

        Written at once, a scrape of 2,000 targets held the event loop, and every probe due
        meanwhile, for 100-300 ms. Each target's lines still come from one of its results; the
        targets are not all of one instant, as no scrape of a running monitor is. The pieces are
        left unjoined: joining and encoding megabytes is the answer's work, off the event loop.
        """
        parts: list[str] = []
        for _ in self._exposition(form, parts):
            await asyncio.sleep(0)
        return parts

    def target_exposition(self, form: Format = Format.TEXT) -> str:
        """The families about targets: each target's cached lines, and the verdicts of now."""
        parts: list[str] = []
        for _ in self._target_exposition(form, parts):
            pass
        return "".join(parts)

    def _exposition(self, form: Format, parts: list[str]) -> Iterator[None]:
        """Appends every family's text to ``parts``, yielding after each slice of the work."""
        yield from self._target_exposition(form, parts)
        parts += (self._self_exposition(form), self._subscription_exposition(form))

    def _target_exposition(self, form: Format, parts: list[str]) -> Iterator[None]:
        """Appends the target families' text to ``parts``, yielding after each slice of targets."""
        stats = list(self.targets.values())
        written: list[tuple[str, ...]] = []
        for start in range(0, len(stats), SLICE):
            written.extend([self._written(s) for s in stats[start : start + SLICE]])
            yield
        for index, family in enumerate(TARGET_FAMILIES):
            parts.append(family.header(form))
            parts.extend(map(itemgetter(index), written))
            yield
        parts.append(VERDICTS.header(form))
        controls = _controls_by_site(stats)
        for start in range(0, len(stats), SLICE):
            parts.extend([_verdict_lines(s, controls) for s in stats[start : start + SLICE]])
            yield

    def _written(self, stats: TargetStats) -> tuple[str, ...]:
        if stats.written is None:
            if stats.inside is None:
                target = stats.job.target
                stats.inside = labels(
                    ("target", "protocol", *self._extra),
                    (
                        target.name,
                        target.protocol,
                        *(target.labels.get(k, "") for k in self._extra),
                    ),
                )
            stats.written = _target_lines(stats, stats.inside)
        return stats.written

    def _self_exposition(self, form: Format) -> str:
        errors = "".join(
            sample(ERRORS.sample, f'reason="{reason.value}"', count)
            for reason, count in self.errors.items()
        )
        return "".join(
            (
                RELOAD_OK.header(form),
                sample(RELOAD_OK.sample, "", self.reload_ok),
                RELOAD_TIME.header(form),
                sample(RELOAD_TIME.sample, "", self.reload_success_time),
                BUILD.header(form),
                sample(BUILD.sample, f'version="{label_value(__version__)}"', 1),
                LATENESS.header(form),
                histogram(LATENESS.name, "", *self.lateness.exposed()),
                ERRORS.header(form),
                errors,
            )
        )

    def _subscription_exposition(self, form: Format) -> str:
        """Each subscription's last fetch: the list's own trouble, never its proxies' failure."""
        parts = {family: [family.header(form)] for family in SUBSCRIPTION_FAMILIES}
        for state in self._subscriptions:
            inside = f'subscription="{label_value(state.name)}"'
            count = len(state.imported.targets) if state.imported is not None else 0
            parts[SUBSCRIPTION_OK].append(sample(SUBSCRIPTION_OK.sample, inside, int(state.ok)))
            if state.last_success is not None:
                line = sample(SUBSCRIPTION_SUCCESS.sample, inside, state.last_success)
                parts[SUBSCRIPTION_SUCCESS].append(line)
            line = sample(SUBSCRIPTION_FAILURES.sample, inside, state.failures)
            parts[SUBSCRIPTION_FAILURES].append(line)
            parts[SUBSCRIPTION_TARGETS].append(sample(SUBSCRIPTION_TARGETS.sample, inside, count))
        return "".join(line for lines in parts.values() for line in lines)


def _verdict_lines(stats: TargetStats, controls: dict[str, list[bool]]) -> str:
    """The target's verdict as a stateset; nothing for a control or before its first result."""
    target = stats.job.target
    working = stats.working
    if working is None or target.role != "target" or stats.inside is None:
        return ""
    verdict = judge(working, controls.get(target.labels.get("site", ""), ()), stats.degraded)
    return _VERDICT_TEMPLATE % tuple(
        value for state in Verdict for value in (stats.inside, int(state is verdict))
    )


#: A target's verdict lines, its labels and each state's 0 or 1 left open: one ``%`` per scrape.
_VERDICT_TEMPLATE = "".join(
    f'{VERDICTS.name}{{%s,{VERDICTS.name}="{state.value}"}} %d\n' for state in Verdict
)


def _controls_by_site(stats: Iterable[TargetStats]) -> dict[str, list[bool]]:
    """Site → the last outcome of each of its control targets that has been probed."""
    sites: dict[str, list[bool]] = {}
    for s in stats:
        if s.job.target.role == "control" and s.last is not None:
            sites.setdefault(s.job.target.labels.get("site", ""), []).append(s.last.ok)
    return sites
