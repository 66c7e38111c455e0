"""Fetch the monitor's counters from Prometheus and turn them into per-interval counts per target.

Why raw counters and not ``increase()``: ``increase(x[step])`` extrapolates, and consecutive
windows drop the increment between the last sample of one window and the first of the next. The
report instead asks for each counter's value at every step (a plain selector in a range query) and
takes differences itself, so every probe the monitor counted lands in exactly one interval, and a
success ratio of 4 in 10 reads 0.4, not an extrapolated neighbour of it. Counter resets (a
restarted monitor) are handled as ``increase()`` does: a drop means the counter started again
from zero.

A counter series that is absent while its target's ``vpnwatch_probes_total`` is present counts as
zero: the monitor creates a ``vpnwatch_probe_failures_total`` series only at the first failure of
that class, and that first failure must not be lost.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import operator
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from vpnwatch.printable import printable
from vpnwatch.report.query import Grid, Labels, PrometheusClient, PrometheusError
from vpnwatch.report.selector import Matcher, Selector

PROBES = "vpnwatch_probes_total"
FAILURES = "vpnwatch_probe_failures_total"
LATENCY_SUM = "vpnwatch_handshake_duration_seconds_sum"
LATENCY_COUNT = "vpnwatch_handshake_duration_seconds_count"
TARGET_INFO = "vpnwatch_target_info"
TUNNEL_TESTS = "vpnwatch_tunnel_tests_total"
TUNNEL_DEGRADED = "vpnwatch_tunnel_tests_degraded_total"
TUNNEL_FAILED = "vpnwatch_tunnel_tests_failed_total"
#: The tunnel tests' counters: absent for targets (and monitors) that run none.
TUNNEL_METRICS = (TUNNEL_TESTS, TUNNEL_DEGRADED, TUNNEL_FAILED)
#: The counters a report reads, in the order it queries them.
METRICS = (PROBES, FAILURES, LATENCY_SUM, LATENCY_COUNT, *TUNNEL_METRICS)
_LATENCY_FIELDS = {LATENCY_SUM: "latency_sum", LATENCY_COUNT: "latency_count"}

#: Baseline probes run at each site to tell "this protocol is blocked" from "this site is down".
CONTROL_PROTOCOLS = ("tcp", "tls", "dns")
_PER_FAILURE_LABELS = frozenset({"failure", "stage"})
#: The largest counter value believed: floats count exactly up to 2**53, and sums of thousands
#: of such counters stay far from overflowing.
MAX_COUNT = float(2**53)


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class NoDataError(Exception):
    """The selection or the time range holds nothing to report on."""


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """One target as probed from one vantage point."""

    site: str
    protocol: str
    target: str


@dataclass(slots=True)
class ProbeSeries:
    """Per-interval counts for one target; NaN where Prometheus had no data for it."""

    key: SeriesKey
    control: bool
    probes: array[float]
    failures: array[float]
    #: failures by (failure class, stage that failed)
    failure_kinds: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    #: handshake seconds and count of successful probes; empty in a roll-up of several targets
    latency_sum: array[float] = field(default_factory=lambda: array("d"))
    latency_count: array[float] = field(default_factory=lambda: array("d"))
    #: tunnel tests, and those that found the tunnel degraded or carrying nothing; empty in a
    #: roll-up, zero where probes ran and no tunnel test did
    tunnel_tests: array[float] = field(default_factory=lambda: array("d"))
    tunnel_bad: array[float] = field(default_factory=lambda: array("d"))


@dataclass(frozen=True, slots=True)
class ReportQueries:
    """The PromQL a report runs; shown verbatim in the report so anyone can re-run it."""

    selector: Selector

    def selectors(self, metric: str) -> list[str]:
        """The selected series, plus the control probes at the same vantage points."""
        targets = self.selector.render(metric)
        if self.selector == self.selector.vantage_only():
            return [targets]
        controls = self.selector.vantage_only().render(
            metric, Matcher("protocol", "=~", "|".join(CONTROL_PROTOCOLS))
        )
        return [targets, controls]

    def expression(self, metric: str) -> str:
        return " or ".join(self.selectors(metric))


@dataclass(frozen=True, slots=True)
class Dataset:
    grid: Grid
    series: tuple[ProbeSeries, ...]
    #: every query, in the order run (series look-ups first, then range queries)
    queries: tuple[str, ...]
    #: SHA-256 over the fetched series in a canonical form (see :func:`_digest_update`)
    sha256: str


#: How many times :func:`load_dataset` calls its ``step``: a progress bar's length.
LOAD_STEPS = 2 + len(METRICS)


def _no_step(_what: str) -> None:
    """``step`` when nobody watches."""


def load_dataset(
    client: PrometheusClient,
    grid: Grid,
    selector: Selector,
    step: Callable[[str], None] = _no_step,
) -> Dataset:
    """Everything the report is computed from, fetched with the queries it will print.

    ``step`` is told what is fetched next, :data:`LOAD_STEPS` times, for a progress bar.
    """
    queries = ReportQueries(selector)
    step("listing series")
    listed = _require_series(client, queries, grid, selector)
    step("listing targets")
    info = client.series(queries.selectors(TARGET_INFO), grid.start, grid.end)
    controls = {_key(labels) for labels in info if labels.get("role") == "control"}
    controls |= {_key(labels) for labels in listed if labels.get("protocol") in CONTROL_PROTOCOLS}

    digest = hashlib.sha256()
    digest.update(f"grid {grid.start:.0f} {grid.step:.0f} {grid.points}\n".encode())
    assembly = _Assembly(controls)
    for metric in METRICS:
        step(f"reading {metric}")
        expression = queries.expression(metric)
        result = _without_name(client.query_range(expression, grid, expected_series=len(listed)))
        _require_counts(client, expression, result)
        _digest_update(digest, expression, result)
        assembly.add(metric, result)  # empties result: one metric's raw values at a time
    by_key = assembly.finish()

    series = [by_key[key] for key in sorted(by_key)]
    if not any(any(count > 0 for count in s.probes) for s in series):
        raise NoDataError("no probes were counted in the range: the monitor was not running")
    queries_run = (
        *(f"series: {s}" for s in queries.selectors(PROBES)),
        *(f"series: {s}" for s in queries.selectors(TARGET_INFO)),
        *(queries.expression(metric) for metric in METRICS),
    )
    return Dataset(grid, tuple(series), queries_run, digest.hexdigest())


def _require_series(
    client: PrometheusClient, queries: ReportQueries, grid: Grid, selector: Selector
) -> list[dict[str, str]]:
    """The probe series in range, or a NoDataError saying whether the selector or range is off."""
    listed = client.series(queries.selectors(PROBES), grid.start, grid.end)
    if listed:
        return listed
    if client.series(queries.selectors(PROBES)):
        raise NoDataError(
            "no probe data in the requested time range (there is some at other times)"
        )
    which = f"--match {selector}" if selector.matchers else "this Prometheus"
    raise NoDataError(f"{which}: no {PROBES} series at all")


def _require_counts(
    client: PrometheusClient, expression: str, result: Mapping[Labels, array[float]]
) -> None:
    """Every value is a counter's: NaN (no sample) or a number in ``[0, MAX_COUNT]``.

    ``+Inf`` or ``1e308`` in a counter is no count of anything; read on, it would overflow the
    sums and roundings that follow. One C-level pass decides for a series without gaps.
    """
    for labels, values in result.items():
        bad = implausible_count(values)
        if bad is not None:
            shown = printable(json.dumps(dict(labels), ensure_ascii=False))
            raise PrometheusError(
                f"{client.url}: {expression} returned {bad!r} for {shown[:300]}, which is not a"
                " counter's value"
            )


def implausible_count(values: array[float]) -> float | None:
    """The first value that is neither NaN nor in ``[0, MAX_COUNT]``, if any."""
    if values and not has_gaps(values) and min(values) >= 0 and max(values) <= MAX_COUNT:
        return None
    isnan = math.isnan
    return next((v for v in values if not isnan(v) and not 0 <= v <= MAX_COUNT), None)


def _key(labels: Mapping[str, str]) -> SeriesKey:
    site = labels.get("site") or labels.get("instance") or "unknown"
    return SeriesKey(site, labels.get("protocol", ""), labels.get("target", ""))


def _without_name(result: dict[Labels, array[float]]) -> dict[Labels, array[float]]:
    """Range results of ``a or b`` may or may not keep ``__name__``; the report never needs it."""
    return {
        tuple(pair for pair in labels if pair[0] != "__name__"): values
        for labels, values in result.items()
    }


class _Assembly:
    """Turns each metric's raw values into per-target increments as soon as it arrives.

    Memory is what limits a long report at a fine step, so raw values are dropped series by
    series as they are differenced, and each finished array is stored compactly (see
    :func:`compact`). Only the probe counters' presence outlives their metric: it tells a
    counter that does not exist yet (zero) from a target without data (NaN).
    """

    def __init__(self, controls: set[SeriesKey]) -> None:
        self.controls = controls
        self.probes: dict[SeriesKey, array[float]] = {}
        #: a probe counter's raw values if it has gaps; None if it has a value everywhere
        self.probe_presence: dict[Labels, array[float] | None] = {}
        self.failure_kinds: dict[SeriesKey, dict[tuple[str, str], array[float]]] = {}
        self.latency: dict[str, dict[SeriesKey, array[float]]] = {}

    def add(self, metric: str, result: dict[Labels, array[float]]) -> None:
        if metric == PROBES:
            for key, total in _increments_by(result, _probe_key, self._probe_increments):
                self.probes[key] = compact(total)
        elif metric == FAILURES:
            for (key, kind), total in _increments_by(
                result, self._failure_key, self._sibling_increments
            ):
                self.failure_kinds.setdefault(key, {})[kind] = compact(total)
        else:
            latency = self.latency.setdefault(metric, {})
            for key, total in _increments_by(result, self._target_key, self._sibling_increments):
                # counts are counts; a sum of seconds rarely fits float32 exactly
                latency[key] = total if metric == LATENCY_SUM else compact(total)

    def finish(self) -> dict[SeriesKey, ProbeSeries]:
        """One ProbeSeries per target; a counter without series counts zero where probes ran."""
        by_key: dict[SeriesKey, ProbeSeries] = {}
        for key, probes in self.probes.items():
            zeros = _zeros_where_known(probes)
            kinds = {
                kind: compact(_plus(zeros, counts))
                for kind, counts in self.failure_kinds.get(key, {}).items()
            }
            counted = {
                metric: compact(_plus(zeros, self.latency.get(metric, {}).get(key)))
                for metric in (LATENCY_COUNT, *TUNNEL_METRICS)
            }
            tunnel_bad = array("d", counted[TUNNEL_DEGRADED])
            add_into(tunnel_bad, counted[TUNNEL_FAILED])
            by_key[key] = ProbeSeries(
                key=key,
                control=key in self.controls,
                probes=probes,
                failures=_total_failures(zeros, kinds),
                failure_kinds=kinds,
                latency_sum=_plus(zeros, self.latency.get(LATENCY_SUM, {}).get(key)),
                latency_count=counted[LATENCY_COUNT],
                tunnel_tests=counted[TUNNEL_TESTS],
                tunnel_bad=compact(tunnel_bad),
            )
        return by_key

    def _probe_increments(self, labels: Labels, values: array[float]) -> array[float]:
        # float32 keeps NaN as NaN in half the size; most counters need nothing kept at all
        self.probe_presence[labels] = array("f", values) if has_gaps(values) else None
        return counter_increments(values)

    def _sibling_increments(self, labels: Labels, values: array[float]) -> array[float]:
        base = tuple(pair for pair in labels if pair[0] not in _PER_FAILURE_LABELS)
        if base not in self.probe_presence:
            return counter_increments(values)
        presence = self.probe_presence[base]
        if presence is None and has_gaps(values):
            presence = array("d", bytes(8 * len(values)))  # the probe counter is everywhere
        return counter_increments(values, presence)

    def _target_key(self, labels: Labels) -> SeriesKey | None:
        key = _probe_key(labels)
        return key if key in self.probes else None  # without probes: nothing to divide by

    def _failure_key(self, labels: Labels) -> tuple[SeriesKey, tuple[str, str]] | None:
        key = self._target_key(labels)
        named = dict(labels)
        return None if key is None else (key, (named.get("failure", ""), named.get("stage", "")))


_K = TypeVar("_K", SeriesKey, tuple[SeriesKey, tuple[str, str]])


def _increments_by(
    result: dict[Labels, array[float]],
    key_of: Callable[[Labels], _K | None],
    increments_of: Callable[[Labels, array[float]], array[float]],
) -> Iterator[tuple[_K, array[float]]]:
    """The summed increments of the series sharing a key, one key at a time.

    Each series' raw values leave ``result`` as they are differenced, so memory holds the raw
    values not yet read plus one key's sum, never a metric twice over.
    """
    keyed = sorted((key, labels) for labels in result if (key := key_of(labels)) is not None)
    for key, group in itertools.groupby(keyed, key=operator.itemgetter(0)):
        total: array[float] | None = None
        for _, labels in group:
            increments = increments_of(labels, result.pop(labels))
            if total is None:
                total = increments
            else:
                add_into(total, increments)
        if total is not None:
            yield key, total
    result.clear()  # the series of no target


def _probe_key(labels: Labels) -> SeriesKey:
    return _key(dict(labels))


def _plus(zeros: array[float], counts: array[float] | None) -> array[float]:
    """``zeros + counts``, NaN-aware: ``counts`` itself when it has a value everywhere."""
    if counts is None:
        return zeros
    if not has_gaps(counts):
        return counts
    total = array("d", zeros)
    add_into(total, counts)
    return total


def _total_failures(
    zeros: array[float], kinds: Mapping[tuple[str, str], array[float]]
) -> array[float]:
    """The sum of a target's failures of every kind; shared with the kind when there is one."""
    if len(kinds) == 1:
        return next(iter(kinds.values()))
    total = array("d", zeros)
    for counts in kinds.values():
        add_into(total, counts)
    return compact(total)


def compact(values: array[float]) -> array[float]:
    """``values`` as float32 if that holds every value exactly (counts do), else unchanged.

    Per-interval counts are small integers, so this halves what a month at 30 s takes; a
    latency sum keeps its float64. Readers get the same Python floats either way.
    """
    if values.typecode == "f":
        return values
    narrow = array("f", values)
    return narrow if array("d", narrow).tobytes() == values.tobytes() else values


def counter_increments(
    values: array[float], present_when_zero: array[float] | None = None
) -> array[float]:
    """What a counter gained in each interval between consecutive grid points.

    ``present_when_zero`` is a sibling series (the target's probe counter): where the counter
    has no value but the sibling has one, the counter did not exist yet and so stood at zero.
    It runs over every point of every series, so the common case (no gap, no reset) is left
    to C: ``map(operator.sub, ...)``, checked for resets with ``min()``.
    """
    isnan = math.isnan
    if present_when_zero is not None and has_gaps(values):
        pairs = zip(values, present_when_zero, strict=True)
        values = array("d", [0.0 if isnan(v) and not isnan(p) else v for v, p in pairs])
    if not has_gaps(values):
        increments = array("d", map(operator.sub, itertools.islice(values, 1, None), values))
        if not increments or min(increments) >= 0:
            return increments
    # a reset (a drop: the counter started again from zero) or a gap: NaN compares false both
    # ways, so an interval touching a gap stays NaN
    return array(
        "d",
        [
            now - before if now >= before else (now if now < before else math.nan)
            for before, now in itertools.pairwise(values)
        ],
    )


def has_gaps(values: array[float]) -> bool:
    """Whether any value is NaN (no data); one C-level pass, as NaN makes the whole sum NaN."""
    return math.isnan(sum(values))


def _zeros_where_known(reference: array[float]) -> array[float]:
    """Zero wherever ``reference`` has data, NaN elsewhere: the neutral start for summing.

    In float32, which holds both exactly (see :func:`compact`).
    """
    if not has_gaps(reference):
        return array("f", bytes(4 * len(reference)))
    isnan = math.isnan
    return array("f", [math.nan if isnan(v) else 0.0 for v in reference])


def add_into(total: array[float], part: array[float]) -> None:
    """``total += part``, where NaN means "no data" rather than "poison"."""
    if has_gaps(total) or has_gaps(part):
        isnan = math.isnan
        pairs = zip(total, part, strict=True)
        total[:] = array("d", [t if isnan(p) else (p if isnan(t) else t + p) for t, p in pairs])
    else:
        total[:] = array("d", map(operator.add, total, part))


def _digest_update(digest: _Digest, query: str, result: Mapping[Labels, array[float]]) -> None:
    """Feed one query's result to the digest in a form independent of chunking and ordering.

    The query text and a newline, then for each series in sorted label order: its labels as
    compact sorted JSON and a newline, then its values at every grid time as little-endian IEEE
    754 doubles (NaN where absent).
    """
    digest.update(query.encode() + b"\n")
    for labels in sorted(result):
        digest.update(json.dumps(dict(labels), sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
        values = result[labels]
        if sys.byteorder == "big":
            values = array("d", values)
            values.byteswap()
        digest.update(values.tobytes())
