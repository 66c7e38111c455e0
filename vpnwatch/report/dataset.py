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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from vpnwatch.report.query import Grid, Labels, PrometheusClient
from vpnwatch.report.selector import Matcher, Selector

PROBES = "vpnwatch_probes_total"
FAILURES = "vpnwatch_probe_failures_total"
LATENCY_SUM = "vpnwatch_handshake_duration_seconds_sum"
LATENCY_COUNT = "vpnwatch_handshake_duration_seconds_count"
TARGET_INFO = "vpnwatch_target_info"
#: The counters a report reads, in the order it queries them.
METRICS = (PROBES, FAILURES, LATENCY_SUM, LATENCY_COUNT)
_LATENCY_FIELDS = {LATENCY_SUM: "latency_sum", LATENCY_COUNT: "latency_count"}

#: Baseline probes run at each site to tell "this protocol is blocked" from "this site is down".
CONTROL_PROTOCOLS = ("tcp", "tls", "dns")
_PER_FAILURE_LABELS = frozenset({"failure", "stage"})


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
    latency_sum: array[float] = field(default_factory=lambda: array("d"))
    latency_count: array[float] = field(default_factory=lambda: array("d"))


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


def load_dataset(client: PrometheusClient, grid: Grid, selector: Selector) -> Dataset:
    """Everything the report is computed from, fetched with the queries it will print."""
    queries = ReportQueries(selector)
    listed = _require_series(client, queries, grid, selector)
    info = client.series(queries.selectors(TARGET_INFO), grid.start, grid.end)
    controls = {_key(labels) for labels in info if labels.get("role") == "control"}
    controls |= {_key(labels) for labels in listed if labels.get("protocol") in CONTROL_PROTOCOLS}

    digest = hashlib.sha256()
    digest.update(f"grid {grid.start:.0f} {grid.step:.0f} {grid.points}\n".encode())
    by_key: dict[SeriesKey, ProbeSeries] = {}
    probe_values: dict[Labels, array[float]] = {}
    for metric in METRICS:
        expression = queries.expression(metric)
        result = _without_name(client.query_range(expression, grid, expected_series=len(listed)))
        _digest_update(digest, expression, result)
        # each metric is turned into counts as soon as it arrives, so that only one metric's
        # raw values (and the probe counters, which tell an absent counter from a zero) are held
        if metric == PROBES:
            _add_probes(by_key, result, controls)
            probe_values = result
        elif metric == FAILURES:
            _add_failures(by_key, result, probe_values)
        else:
            _add_latency(by_key, _LATENCY_FIELDS[metric], result, probe_values)
        del result

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


def _key(labels: Mapping[str, str]) -> SeriesKey:
    site = labels.get("site") or labels.get("instance") or "unknown"
    return SeriesKey(site, labels.get("protocol", ""), labels.get("target", ""))


def _without_name(result: dict[Labels, array[float]]) -> dict[Labels, array[float]]:
    """Range results of ``a or b`` may or may not keep ``__name__``; the report never needs it."""
    return {
        tuple(pair for pair in labels if pair[0] != "__name__"): values
        for labels, values in result.items()
    }


def _add_probes(
    by_key: dict[SeriesKey, ProbeSeries],
    probe_values: Mapping[Labels, array[float]],
    controls: set[SeriesKey],
) -> None:
    """One ProbeSeries per target, holding its probe counts; the other counters start at zero."""
    for labels, values in probe_values.items():
        key = _key(dict(labels))
        increments = counter_increments(values)
        existing = by_key.get(key)
        if existing is None:
            by_key[key] = ProbeSeries(
                key=key,
                control=key in controls,
                probes=increments,
                failures=_zeros_where_known(increments),
                latency_sum=_zeros_where_known(increments),
                latency_count=_zeros_where_known(increments),
            )
        else:
            add_into(existing.probes, increments)


def _add_failures(
    by_key: Mapping[SeriesKey, ProbeSeries],
    failure_values: Mapping[Labels, array[float]],
    probe_values: Mapping[Labels, array[float]],
) -> None:
    for labels, values in failure_values.items():
        named = dict(labels)
        base = tuple(pair for pair in labels if pair[0] not in _PER_FAILURE_LABELS)
        target = by_key.get(_key(named))
        if target is None:
            continue  # failures of a target without probes in range: nothing to divide by
        increments = counter_increments(values, probe_values.get(base))
        add_into(target.failures, increments)
        kind = (named.get("failure", ""), named.get("stage", ""))
        if kind not in target.failure_kinds:
            target.failure_kinds[kind] = _zeros_where_known(target.probes)
        add_into(target.failure_kinds[kind], increments)


def _add_latency(
    by_key: Mapping[SeriesKey, ProbeSeries],
    attribute: str,
    latency_values: Mapping[Labels, array[float]],
    probe_values: Mapping[Labels, array[float]],
) -> None:
    for labels, values in latency_values.items():
        target = by_key.get(_key(dict(labels)))
        if target is not None:
            add_into(
                getattr(target, attribute), counter_increments(values, probe_values.get(labels))
            )


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
        increments = array("d", map(operator.sub, values[1:], values[:-1]))
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
    """Zero wherever ``reference`` has data, NaN elsewhere: the neutral start for summing."""
    if not has_gaps(reference):
        return array("d", bytes(8 * len(reference)))
    isnan = math.isnan
    return array("d", [math.nan if isnan(v) else 0.0 for v in reference])


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
