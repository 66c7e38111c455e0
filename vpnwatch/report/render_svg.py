"""Availability charts as hand-written inline SVG: no plotting library, no script, no network.

One chart per protocol: the success ratio per interval, one line per site, the threshold as a
dashed line, each incident as a shaded band (red: failing, grey: the site was offline), and each
period without data as an outlined band.
Intervals are aggregated to at most one per horizontal pixel by summing probes and failures, so
a month of 30 s steps still draws as a small file and a short outage is never averaged away into
a neighbour's ratio more than the pixel forces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, tzinfo
from html import escape

from vpnwatch.report.dataset import ProbeSeries
from vpnwatch.report.incidents import Gap, Incident, success_ratios
from vpnwatch.report.query import Grid
from vpnwatch.report.timespec import format_duration, format_local

WIDTH, HEIGHT = 960, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 10, 34
SITE_COLOURS = ("#1f6fb4", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d")
BAND_COLOURS = {"failing": "#dc2626", "offline": "#6b7280", "unknown": "#f59e0b"}
NO_DATA_COLOUR = "#9ca3af"
#: Tick spacings in seconds, finest first; the first giving at most 8 ticks is used.
TICK_SPACINGS = (3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000)


def availability_chart(
    title: str,
    grid: Grid,
    sites: Sequence[tuple[str, ProbeSeries]],
    incidents: Sequence[Incident],
    *,
    threshold: float,
    zone: tzinfo,
    gaps: Sequence[Gap] = (),
) -> str:
    """An ``<svg>`` element: ``sites`` are (site name, that site's rolled-up series).

    Periods without data are outlined bands, so that a break in a line reads as "not known".
    """
    plot = _Plot(grid)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        *(_gap_band(plot, gap, zone) for gap in gaps),
        *(_band(plot, incident, zone) for incident in incidents),
        *_axes(plot, threshold, zone),
    ]
    for position, (site, series) in enumerate(sites):
        colour = SITE_COLOURS[position % len(SITE_COLOURS)]
        parts += _line(plot, series, colour, site)
    parts += _legend([site for site, _ in sites])
    parts.append("</svg>")
    return "\n".join(parts)


class _Plot:
    """Maps times and ratios to pixels."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM
        self.per_pixel = max(1, math.ceil(grid.intervals / self.width))

    def x(self, timestamp: float) -> float:
        fraction = (timestamp - self.grid.start) / (self.grid.end - self.grid.start)
        return LEFT + min(1.0, max(0.0, fraction)) * self.width

    def y(self, ratio: float) -> float:
        return TOP + (1.0 - ratio) * self.height


def _line(plot: _Plot, series: ProbeSeries, colour: str, site: str) -> list[str]:
    """Polylines through each bucket's ratio, broken where there is no data."""
    size = plot.per_pixel
    probes = [_nansum(series.probes[i : i + size]) for i in range(0, len(series.probes), size)]
    failures = [
        _nansum(series.failures[i : i + size]) for i in range(0, len(series.failures), size)
    ]
    segments: list[list[str]] = [[]]
    for bucket, ratio in enumerate(success_ratios(probes, failures)):
        if math.isnan(ratio):
            if segments[-1]:
                segments.append([])
            continue
        # a bucket's ratio belongs to the middle of the span it covers
        middle = plot.grid.start + (bucket + 0.5) * size * plot.grid.step
        segments[-1].append(f"{plot.x(middle):.1f},{plot.y(ratio):.1f}")
    return [
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" stroke-linejoin="round" '
        f'points="{" ".join(points)}"><title>{escape(site)}</title></polyline>'
        for points in segments
        if points
    ]


def _band(plot: _Plot, incident: Incident, zone: tzinfo) -> str:
    left, right = plot.x(incident.start), plot.x(incident.end)
    label = (
        f"{incident.site}: {incident.verdict}, {format_duration(incident.duration)} from "
        f"{format_local(incident.start, zone)}, {incident.success_ratio:.0%} succeeded"
    )
    return (
        f'<rect x="{left:.1f}" y="{TOP}" width="{max(1.0, right - left):.1f}" '
        f'height="{plot.height}" fill="{BAND_COLOURS[incident.verdict]}" fill-opacity="0.18">'
        f"<title>{escape(label)}</title></rect>"
    )


def _gap_band(plot: _Plot, gap: Gap, zone: tzinfo) -> str:
    left, right = plot.x(gap.start), plot.x(gap.end)
    what = f"no {gap.protocol} data" if gap.protocol else "no data"
    label = (
        f"{gap.site}: {what} for {format_duration(gap.duration)} from"
        f" {format_local(gap.start, zone)}"
    )
    return (
        f'<rect x="{left:.1f}" y="{TOP}" width="{max(1.0, right - left):.1f}" '
        f'height="{plot.height}" fill="{NO_DATA_COLOUR}" fill-opacity="0.10" '
        f'stroke="{NO_DATA_COLOUR}" stroke-dasharray="3 3"><title>{escape(label)}</title></rect>'
    )


def _axes(plot: _Plot, threshold: float, zone: tzinfo) -> list[str]:
    right = LEFT + plot.width
    bottom = TOP + plot.height
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot.width}" height="{plot.height}" '
        'fill="none" stroke="#9ca3af" stroke-width="1"/>'
    ]
    for ratio in (0.0, 0.5, 1.0):
        y = plot.y(ratio)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{ratio:.0%}</text>"
        )
    y = plot.y(threshold)
    parts.append(
        f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#dc2626" '
        f'stroke-dasharray="4 3" stroke-width="1"><title>threshold {threshold:.0%}</title></line>'
    )
    for tick, label in _time_ticks(plot.grid, zone):
        x = plot.x(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#9ca3af"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">'
            f"{escape(label)}</text>"
        )
    return parts


def _time_ticks(grid: Grid, zone: tzinfo) -> list[tuple[float, str]]:
    """Round local times across the range, labelled by time of day or by date."""
    span = grid.end - grid.start
    spacing = next((s for s in TICK_SPACINGS if span / s <= 8), TICK_SPACINGS[-1])
    offset = datetime.fromtimestamp(grid.start, zone).utcoffset()
    shift = offset.total_seconds() if offset is not None else 0.0
    first = math.ceil((grid.start + shift) / spacing) * spacing - shift
    pattern = "%H:%M" if spacing < 86400 else "%d %b"
    ticks = []
    tick = first
    while tick <= grid.end:
        local = datetime.fromtimestamp(tick, zone)
        label = local.strftime("%d %b" if pattern == "%H:%M" and local.hour == 0 else pattern)
        ticks.append((tick, label))
        tick += spacing
    return ticks


def _legend(sites: Sequence[str]) -> list[str]:
    parts = []
    x = LEFT
    y = HEIGHT - 4
    for position, site in enumerate(sites):
        colour = SITE_COLOURS[position % len(SITE_COLOURS)]
        parts.append(
            f'<rect x="{x}" y="{y - 8}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{y - 4}" class="legend">{escape(site)}</text>'
        )
        x += 24 + 7 * len(site)
    return parts


def _nansum(values: Sequence[float]) -> float:
    """Sum of the values with data; NaN if none has any (so the bucket stays a gap)."""
    total = math.fsum(values)
    if not math.isnan(total):
        return total
    known = [value for value in values if not math.isnan(value)]
    return math.fsum(known) if known else math.nan
