"""Incidents: maximal periods in which a success ratio stays below a threshold.

The rules, in the order they apply:

1. An interval is *bad* when probes ran in it and fewer than ``threshold`` of them succeeded.
   An interval without probes is not bad: the report cannot tell what happened then.
2. Flap merging: bad runs separated by at most ``merge_gap`` (rounded down to whole steps) of
   intervals with data that are not bad become one incident, so a protocol that works for a few
   minutes between failures is one incident, not a dozen. Intervals without data between them
   do not count towards the gap: a monitor that stopped during a blocking must not split it
   into pieces that each look smaller than the event. The incident says how much of it had no
   data.
3. Blips: an incident is kept when its *failing time* is at least ``min_duration``. The failing
   time is, summed over the incident's intervals, the share of probes that failed times the
   step: about how long probes were failing, whatever the step. (A 4-minute failure is 4
   minutes of failing time at a 1-minute step and at a 5-minute one, where it fills 80 % of one
   interval, so ``--step`` does not decide whether it is an incident.)
4. An incident is *open* at its start when it begins at the start of the range or right after
   an interval without data, and open at its end likewise: it may have begun earlier or lasted
   longer than the report can see.

Periods without data are reported as gaps: a site none of whose probes counted anything for at
least ``min_duration``, and a protocol at a site that had data while that protocol had none.

The rules run at three scopes: each target; each protocol at each site (the sum of that
protocol's targets' probes, so one broken server among healthy ones does not make a protocol
incident unless it carries most of the probes); and each site's control probes, whose incidents
mean the site's own network was down. A target or protocol incident is ``offline`` when the
site's controls were bad during at least half of its intervals that have control data,
``failing`` when they were fine, and ``unknown`` when the site has no controls.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from vpnwatch.registry import PROTOCOLS
from vpnwatch.report.dataset import (
    Dataset,
    ProbeSeries,
    SeriesKey,
    add_into,
    compact,
    has_gaps,
)
from vpnwatch.report.query import Grid

Scope = Literal["site", "protocol", "target"]
Verdict = Literal["failing", "offline", "unknown"]
Span = tuple[int, int]  # half-open range of interval indexes

#: The pseudo-protocol of a site's control probes rolled up together.
CONTROLS = "controls"
#: "latency before" averages over this long before an incident starts.
BEFORE_WINDOW = 3600.0
_SCOPE_ORDER = {"site": 0, "protocol": 1, "target": 2}


@dataclass(frozen=True, slots=True)
class Rules:
    threshold: float = 0.5
    merge_gap: float = 600.0
    min_duration: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("the threshold is a success ratio in (0, 1]")

    def merge_intervals(self, step: float) -> int:
        return math.floor(self.merge_gap / step + 1e-9)

    def min_intervals(self, step: float) -> int:
        """The fewest whole intervals a gap in the data must fill to be reported."""
        return max(1, math.ceil(self.min_duration / step - 1e-9))


@dataclass(frozen=True, slots=True)
class Incident:
    scope: Scope
    site: str
    protocol: str
    #: the targets whose own ratio was below the threshold at some time during the incident
    targets: tuple[str, ...]
    start: float
    end: float
    probes: int
    failures: int
    #: (failure class, count), most frequent first
    failure_classes: tuple[tuple[str, int], ...]
    #: (stage that failed, count), most frequent first
    stages: tuple[tuple[str, int], ...]
    #: mean handshake seconds of successful probes in the hour before, and during
    latency_before: float | None
    latency_during: float | None
    verdict: Verdict
    #: the site's control probes' success ratio during the incident
    control_success: float | None
    #: it may have begun before ``start``: at the range's start, or right after a gap in the data
    open_start: bool = False
    #: it may have lasted past ``end``: at the range's end, or right before a gap in the data
    open_end: bool = False
    #: seconds within the incident without data (merged across, rule 2)
    without_data: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def success_ratio(self) -> float:
        return 1.0 - self.failures / self.probes if self.probes else 0.0


@dataclass(frozen=True, slots=True)
class Gap:
    """A period without data: at a whole site (``protocol`` empty), or for one protocol there."""

    site: str
    protocol: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Analysis:
    grid: Grid
    rules: Rules
    incidents: tuple[Incident, ...]
    #: per (site, protocol) totals, protocol ``controls`` for a site's controls: for charts
    rollups: dict[tuple[str, str], ProbeSeries]
    #: periods without data, by start time
    gaps: tuple[Gap, ...] = ()

    @property
    def sites(self) -> list[str]:
        return sorted({site for site, _ in self.rollups})

    def protocols_at(self, site: str | None = None) -> list[str]:
        """Probed protocols (controls excluded) at ``site``, or anywhere; WireGuard first."""
        found = {p for s, p in self.rollups if p != CONTROLS and site in (None, s)}
        return sorted(found, key=protocol_sort_key)


def protocol_sort_key(protocol: str) -> tuple[int, str]:
    """Registered protocols in the registry's order, then any other name alphabetically."""
    known = list(PROTOCOLS)
    return (known.index(protocol), "") if protocol in known else (len(known), protocol)


def success_ratios(probes: Sequence[float], failures: Sequence[float]) -> array[float]:
    """Per-interval success ratio; NaN where no probe ran."""
    nan = math.nan
    return array(
        "d",
        [
            # as max(0.0, 1 - failed / count), without a call per interval; NaN counts are not > 0
            (1.0 - failed / count if failed < count else 0.0) if count > 0 else nan
            for count, failed in zip(probes, failures, strict=True)
        ],
    )


def bad_runs(ratios: Sequence[float], threshold: float) -> list[Span]:
    """Maximal runs of intervals whose ratio is below ``threshold`` (NaN is never below)."""
    return runs_of_ones(bytes(map(operator.lt, ratios, itertools.repeat(threshold))))


def runs_of_ones(flags: bytes) -> list[Span]:
    """Maximal runs of 1 in ``flags``, as half-open spans."""
    runs: list[Span] = []
    start = flags.find(1)
    while start >= 0:
        end = flags.find(0, start)
        if end < 0:
            end = len(flags)
        runs.append((start, end))
        start = flags.find(1, end)
    return runs


def merge_runs(runs: Iterable[Span], max_gap: int, known: bytes | None = None) -> list[Span]:
    """Join runs separated by at most ``max_gap`` intervals: flap merging.

    With ``known`` (1 where an interval has data), only intervals with data count towards the
    gap, so runs separated by a stretch without data merge across it.
    """
    merged: list[Span] = []
    for start, end in runs:
        if merged:
            between = known[merged[-1][1] : start].count(1) if known is not None else None
            if (start - merged[-1][1] if between is None else between) <= max_gap:
                merged[-1] = (merged[-1][0], end)
                continue
        merged.append((start, end))
    return merged


def failing_time(series: ProbeSeries, span: Span, step: float) -> float:
    """Rule 3: the share of probes that failed in each interval of ``span``, times the step."""
    shares = (
        min(failed, count) / count
        for count, failed in zip(
            series.probes[span[0] : span[1]], series.failures[span[0] : span[1]], strict=True
        )
        if count > 0
    )
    return step * math.fsum(shares)


def incident_spans(series: ProbeSeries, rules: Rules, step: float) -> list[Span]:
    """Rules 1 to 3 of the module docstring applied to one series."""
    if not any(series.failures):  # every interval succeeded or had no probes: nothing is bad
        return []
    runs = bad_runs(success_ratios(series.probes, series.failures), rules.threshold)
    known = bytes(1 - missing for missing in no_probes(series.probes))
    return [
        span
        for span in merge_runs(runs, rules.merge_intervals(step), known)
        if failing_time(series, span, step) >= rules.min_duration - 1e-6
    ]


def no_probes(probes: Sequence[float]) -> bytes:
    """1 for each interval in which no probe was counted (no sample, or none ran)."""
    return bytes(not count > 0 for count in probes)  # NaN is not > 0 either


def gap_spans(missing: bytes, shortest: int) -> list[Span]:
    """Runs of at least ``shortest`` intervals flagged in ``missing``."""
    return [span for span in runs_of_ones(missing) if span[1] - span[0] >= shortest]


def roll_up(key: SeriesKey, members: Sequence[ProbeSeries], *, control: bool) -> ProbeSeries:
    """The sum of several targets' counts, as if they were one target.

    Latency is left out (empty): only incidents use it, over a few windows, so
    :func:`describe` sums the members' latency there instead of over the whole range.
    """
    kinds: dict[tuple[str, str], list[array[float]]] = {}
    for member in members:
        for kind, counts in member.failure_kinds.items():
            kinds.setdefault(kind, []).append(counts)
    return ProbeSeries(
        key=key,
        control=control,
        probes=compact(_sum(member.probes for member in members)),
        failures=compact(_sum(member.failures for member in members)),
        failure_kinds={kind: compact(_sum(parts)) for kind, parts in kinds.items()},
    )


def _sum(parts: Iterable[array[float]]) -> array[float]:
    """The NaN-aware sum of equally long series, added in order.

    Without gaps, one pass of chained ``map(operator.add, ...)`` adds them all in C.
    """
    first, *others = parts
    if any(has_gaps(part) for part in (first, *others)):
        total = array("d", first)
        for part in others:
            add_into(total, part)
        return total
    summed: Iterator[float] = iter(first)
    for part in others:
        summed = map(operator.add, summed, part)
    return array("d", summed)


def analyse(dataset: Dataset, rules: Rules) -> Analysis:
    """Every incident at every scope, sorted by start time, then scope, site and protocol."""
    step = dataset.grid.step
    groups: dict[tuple[str, str], list[ProbeSeries]] = {}
    for series in dataset.series:
        protocol = CONTROLS if series.control else series.key.protocol
        groups.setdefault((series.key.site, protocol), []).append(series)
    rollups = {
        (site, protocol): roll_up(
            SeriesKey(site, protocol, "*"), members, control=protocol == CONTROLS
        )
        for (site, protocol), members in groups.items()
    }

    incidents: list[Incident] = []
    for (site, protocol), members in groups.items():
        controls = rollups.get((site, CONTROLS))
        scope: Scope = "site" if protocol == CONTROLS else "protocol"
        checked = [(scope, rollups[site, protocol], members)]
        if scope == "protocol":
            checked += [("target", member, [member]) for member in members]
        for level, series, involved in checked:
            incidents += [
                describe(
                    series,
                    span,
                    grid=dataset.grid,
                    rules=rules,
                    scope=level,
                    members=involved,
                    controls=controls,
                )
                for span in incident_spans(series, rules, step)
            ]
    incidents.sort(key=lambda i: (i.start, _SCOPE_ORDER[i.scope], i.site, i.protocol, i.targets))
    return Analysis(
        dataset.grid, rules, tuple(incidents), rollups, find_gaps(rollups, dataset.grid, rules)
    )


def find_gaps(
    rollups: Mapping[tuple[str, str], ProbeSeries], grid: Grid, rules: Rules
) -> tuple[Gap, ...]:
    """Where a whole site had no data, and where one protocol had none while its site had some."""
    shortest = rules.min_intervals(grid.step)
    gaps: list[Gap] = []
    for site in sorted({site for site, _ in rollups}):
        at_site = {protocol: rollups[s, protocol] for s, protocol in rollups if s == site}
        site_missing = bytes(
            all(flags)
            for flags in zip(*(no_probes(r.probes) for r in at_site.values()), strict=True)
        )
        gaps += [_gap(site, "", span, grid) for span in gap_spans(site_missing, shortest)]
        for protocol, rollup in sorted(at_site.items()):
            missing = bytes(
                m and not s for m, s in zip(no_probes(rollup.probes), site_missing, strict=True)
            )
            gaps += [_gap(site, protocol, span, grid) for span in gap_spans(missing, shortest)]
    gaps.sort(key=lambda gap: (gap.start, gap.site, gap.protocol))
    return tuple(gaps)


def _gap(site: str, protocol: str, span: Span, grid: Grid) -> Gap:
    return Gap(site, protocol, grid.time(span[0]), grid.time(span[1]))


def describe(
    series: ProbeSeries,
    span: Span,
    *,
    grid: Grid,
    rules: Rules,
    scope: Scope,
    members: Sequence[ProbeSeries],
    controls: ProbeSeries | None,
) -> Incident:
    """One incident's evidence: counts, failure classes, latency and the controls' state."""
    first, stop = span
    window = slice(first, stop)
    before = slice(max(0, first - math.ceil(BEFORE_WINDOW / grid.step)), first)
    classes: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    for (failure, stage), counts in series.failure_kinds.items():
        failed = round(_total(counts[window]))
        if failed:
            classes[failure] += failed
            stages[stage] += failed
    if scope == "site":
        verdict: Verdict = "offline"
        control_success = _ratio(series, window)
    else:
        verdict, control_success = _classify(controls, window, rules.threshold)
    probes = series.probes
    return Incident(
        scope=scope,
        site=series.key.site,
        protocol=series.key.protocol,
        targets=tuple(sorted(m.key.target for m in members if _has_bad(m, window, rules))),
        start=grid.time(first),
        end=grid.time(stop),
        probes=round(_total(series.probes[window])),
        failures=round(_total(series.failures[window])),
        failure_classes=_most_common(classes),
        stages=_most_common(stages),
        latency_before=_mean_latency(members, before),
        latency_during=_mean_latency(members, window),
        verdict=verdict,
        control_success=control_success,
        open_start=first == 0 or not probes[first - 1] > 0,  # NaN is not > 0: no data
        open_end=stop == grid.intervals or not probes[stop] > 0,
        without_data=no_probes(probes[window]).count(1) * grid.step,
    )


def _classify(
    controls: ProbeSeries | None, window: slice, threshold: float
) -> tuple[Verdict, float | None]:
    if controls is None:
        return "unknown", None
    ratios = success_ratios(controls.probes[window], controls.failures[window])
    known = [ratio for ratio in ratios if not math.isnan(ratio)]
    if not known:
        return "unknown", None
    bad = sum(1 for ratio in known if ratio < threshold)
    verdict: Verdict = "offline" if 2 * bad >= len(known) else "failing"
    return verdict, _ratio(controls, window)


def _has_bad(series: ProbeSeries, window: slice, rules: Rules) -> bool:
    ratios = success_ratios(series.probes[window], series.failures[window])
    return any(ratio < rules.threshold for ratio in ratios)


def _ratio(series: ProbeSeries, window: slice) -> float | None:
    probes = _total(series.probes[window])
    return 1.0 - _total(series.failures[window]) / probes if probes else None


def _mean_latency(members: Sequence[ProbeSeries], window: slice) -> float | None:
    """Mean handshake seconds of the members' successful probes in ``window``."""
    count = _total(_sum(member.latency_count[window] for member in members))
    return _total(_sum(member.latency_sum[window] for member in members)) / count if count else None


def _total(values: Iterable[float]) -> float:
    """Sum ignoring NaN (no data)."""
    return sum(value for value in values if not math.isnan(value))


def _most_common(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0])))
