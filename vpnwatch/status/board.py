"""What a status page shows, independent of HTML: rows, their days, their state, the outages.

The page reads the same counters and finds incidents with the same rules as ``vpnwatch report``
(see vpnwatch/report/incidents.py); it only says them in a reader's words:

- an incident whose site's control probes failed too is ``offline`` (the site's own network);
- otherwise it is ``failing`` when fewer than 10 % of handshakes succeeded (the report's
  "unusable") and ``degraded`` when more did;
- an ``offline`` protocol incident is listed once, as its site's, not once per protocol;
- a row is in the state of the incident covering its latest interval with probes, else
  ``operational``; ``no_data`` when it had no probe in the last :data:`STALE_AFTER` seconds.

A day's bar takes the worst state of that row's incidents on that day (the reader's day, in
``--tz``): failing, then degraded, then offline, since the first two are the protocol's own
trouble and the last is the site's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Literal

from vpnwatch.report.dataset import ProbeSeries
from vpnwatch.report.incidents import CONTROLS, Analysis, Incident, protocol_sort_key
from vpnwatch.report.narrative import UNUSABLE_BELOW

State = Literal["operational", "degraded", "failing", "offline", "no_data"]
#: Worst first: the order a day's bar picks its state in.
SEVERITY: tuple[State, ...] = ("failing", "degraded", "offline", "operational", "no_data")
#: A row without a probe counted in this long is ``no_data`` now: the monitor stopped.
STALE_AFTER = 1800.0


@dataclass(frozen=True, slots=True)
class Day:
    start: float
    #: share of successful probes that day; None without probes
    success: float | None
    state: State


@dataclass(frozen=True, slots=True)
class Outage:
    """An incident of one protocol at one site, or of a whole site (protocol ``controls``)."""

    site: str
    protocol: str
    start: float
    end: float
    state: State
    success: float
    ongoing: bool

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Row:
    site: str
    protocol: str
    state: State
    days: tuple[Day, ...]
    #: share of successful probes over every day shown; None without probes
    success: float | None
    #: (target, endpoint) of the row's targets: only when the page was asked to show them
    endpoints: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Board:
    generated: float
    zone: tzinfo
    zone_name: str
    rows: tuple[Row, ...]
    #: newest first
    outages: tuple[Outage, ...]

    @property
    def sites(self) -> list[str]:
        return sorted({row.site for row in self.rows})

    def counts(self) -> dict[State, int]:
        """How many rows are in each state now."""
        return {state: sum(row.state == state for row in self.rows) for state in SEVERITY}


def day_starts(now: float, days: int, zone: tzinfo) -> list[float]:
    """Midnights, in ``zone``, of the ``days`` days ending with today's."""
    today = datetime.fromtimestamp(now, zone).date()
    return [
        datetime.combine(today - timedelta(days=back), time(), zone).timestamp()
        for back in range(days - 1, -1, -1)
    ]


def outage_state(incident: Incident) -> State:
    if incident.verdict == "offline":
        return "offline"
    return "failing" if incident.success_ratio < UNUSABLE_BELOW else "degraded"


def build_board(
    analysis: Analysis,
    *,
    now: float,
    days: int,
    zone: tzinfo,
    zone_name: str,
    endpoints: dict[tuple[str, str], tuple[tuple[str, str], ...]] | None = None,
) -> Board:
    """The page's content from an analysis covering the ``days`` days up to ``now``."""
    starts = day_starts(now, days, zone)
    spans = list(zip(starts, [*starts[1:], math.inf], strict=True))
    outages: list[Outage] = []
    rows: list[Row] = []
    for (site, protocol), series in sorted(
        analysis.rollups.items(), key=lambda item: (item[0][0], protocol_sort_key(item[0][1]))
    ):
        latest = _latest_probe_end(series, analysis, now)
        scope = "site" if protocol == CONTROLS else "protocol"
        own = [
            _outage(incident, latest)
            for incident in analysis.incidents
            if incident.scope == scope and (incident.site, incident.protocol) == (site, protocol)
        ]
        outages += own
        if protocol == CONTROLS:
            continue
        rows.append(
            Row(
                site=site,
                protocol=protocol,
                state=_current_state(own, latest, now),
                days=tuple(_day(series, analysis, span, own) for span in spans),
                success=_success(series, analysis, starts[0], math.inf),
                endpoints=(endpoints or {}).get((site, protocol), ()),
            )
        )
    shown = [outage for outage in outages if not _within_site_outage(outage, outages)]
    shown.sort(key=lambda o: (-o.start, o.site, protocol_sort_key(o.protocol)))
    return Board(now, zone, zone_name, tuple(rows), tuple(shown))


def _within_site_outage(outage: Outage, outages: Sequence[Outage]) -> bool:
    """An ``offline`` protocol outage during its whole site's: the site's line says it all."""
    return outage.protocol != CONTROLS and any(
        other.protocol == CONTROLS
        and other.site == outage.site
        and other.start < outage.end
        and outage.start < other.end
        for other in outages
        if outage.state == "offline"
    )


def _latest_probe_end(series: ProbeSeries, analysis: Analysis, now: float) -> float | None:
    """The end of the last interval in which the row's probes ran, if recent enough to count."""
    for index in range(len(series.probes) - 1, -1, -1):
        if series.probes[index] > 0:
            end = analysis.grid.time(index + 1)
            return end if end >= now - STALE_AFTER else None
    return None


def _outage(incident: Incident, latest: float | None) -> Outage:
    return Outage(
        site=incident.site,
        protocol=incident.protocol,
        start=incident.start,
        end=incident.end,
        state=outage_state(incident),
        success=incident.success_ratio,
        ongoing=latest is not None and incident.end >= latest,
    )


def _current_state(outages: Sequence[Outage], latest: float | None, now: float) -> State:
    if latest is None:
        return "no_data"
    ongoing = [outage.state for outage in outages if outage.ongoing]
    return _worst(ongoing) if ongoing else "operational"


def _day(
    series: ProbeSeries, analysis: Analysis, span: tuple[float, float], outages: Sequence[Outage]
) -> Day:
    start, end = span
    success = _success(series, analysis, start, end)
    touching = [o.state for o in outages if o.start < end and o.end > start]
    if touching:
        return Day(start, success, _worst(touching))
    return Day(start, success, "no_data" if success is None else "operational")


def _success(series: ProbeSeries, analysis: Analysis, start: float, end: float) -> float | None:
    """Share of successful probes in intervals starting in ``[start, end)``."""
    grid = analysis.grid
    first = max(0, math.ceil((start - grid.start) / grid.step - 1e-9))
    stop = len(series.probes) if math.isinf(end) else math.ceil((end - grid.start) / grid.step)
    stop = min(len(series.probes), max(first, stop))
    probes = sum(v for v in series.probes[first:stop] if not math.isnan(v))
    failures = sum(v for v in series.failures[first:stop] if not math.isnan(v))
    return 1.0 - failures / probes if probes else None


def _worst(states: Sequence[State]) -> State:
    return min(states, key=SEVERITY.index)
