"""Draw the dashboard's main panels from a real Prometheus, for the README: a screenshot stand-in.

Grafana is not installable where vpnwatch is built, so this backfills the simulated fleet
(tests/stack/fleet.py) into Debian's prometheus, asks it the dashboard's own queries exactly as
the tests do, and draws the answers with matplotlib in the panels' layout and colours.

    python -m tests.stack.render_preview docs/dashboard.png

matplotlib is needed only here, not by vpnwatch or its tests.
"""

from __future__ import annotations

import math
import re
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # before pyplot is imported: no display here
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from tests.stack import fleet
from tests.stack.promlib import (
    Prometheus,
    backfill,
    load_dashboard,
    panel_queries,
    running_prometheus,
    substitute,
)

END = 1_717_243_200.0  # the same fixed history as the tests: 2024-06-01 10:00 to 12:00 UTC
START = END - 2 * 3600
ALL = {name: ".*" for name in ("vantage", "protocol", "provider", "region", "site", "target")}
STATE_COLOURS = {0: "#56a64b", 1: "#e02f44", 2: "#8f3bb8"}


def legend(template: str, labels: Mapping[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template).strip()


def series(server: Prometheus, title: str) -> list[tuple[str, list[datetime], list[float]]]:
    """Every (legend, times, values) the panel's range queries return over the history."""
    found = []
    for query in panel_queries(load_dashboard()):
        if query.panel != title:
            continue
        template = _legend_of(title, query.ref)
        for item in server.query_range(substitute(query.expr, ALL), START, END, 60):
            times = [datetime.fromtimestamp(float(t), UTC) for t, _ in item["values"]]
            found.append((legend(template, item["metric"]), times, _floats(item["values"])))
    return sorted(found, key=lambda entry: entry[0])


def instant(server: Prometheus, title: str) -> list[tuple[str, float]]:
    (query,) = [q for q in panel_queries(load_dashboard()) if q.panel == title]
    template = _legend_of(title, query.ref)
    result = server.query(substitute(query.expr, ALL), at=END)
    return sorted((legend(template, s["metric"]), float(s["value"][1])) for s in result)


def _legend_of(title: str, ref: str) -> str:
    for item in load_dashboard()["panels"]:
        if item["title"] == title:
            for target in item["targets"]:
                if target["refId"] == ref:
                    legend_format: str = target["legendFormat"]
                    return legend_format
    raise KeyError(title)


def _floats(values: list[list[Any]]) -> list[float]:
    return [float(value) for _, value in values]


def _time_axis(axes: Axes) -> None:
    axes.xaxis.set_major_locator(mdates.MinuteLocator(byminute=[0, 30]))  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    axes.grid(alpha=0.3)


def draw(server: Prometheus, output: Path) -> None:
    figure, grid = plt.subplots(3, 2, figsize=(16, 13), constrained_layout=True)
    figure.suptitle("vpnwatch — main panels (simulated fleet, real Prometheus queries)")

    axes = grid[0][0]
    axes.set_title("Availability per protocol")
    for name, times, values in series(server, "Availability per protocol"):
        axes.plot(times, values, label=name)
    axes.set_ylim(-0.05, 1.05)
    axes.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    axes.legend(loc="lower left", fontsize=8)
    _time_axis(axes)

    axes = grid[0][1]
    axes.set_title("Handshake latency p50 / p95 per protocol")
    for name, times, values in series(server, "Handshake latency p50 / p95 per protocol"):
        axes.plot(times, values, label=name, linestyle="--" if name.endswith("p50") else "-")
    axes.set_yscale("log")
    axes.set_ylabel("seconds")
    axes.legend(loc="upper left", fontsize=7, ncol=2)
    _time_axis(axes)

    axes = grid[1][0]
    axes.set_title("Target state (green ok, red failing, purple offline)")
    rows = series(server, "Target state")
    for number, (_, times, values) in enumerate(rows):
        for when, value in zip(times, values, strict=True):
            axes.barh(number, 1 / 1440, left=mdates.date2num(when), height=0.8,  # type: ignore[no-untyped-call]
                      color=STATE_COLOURS[int(value)])  # fmt: skip
    axes.set_yticks(range(len(rows)), [name for name, _, _ in rows], fontsize=7)
    _time_axis(axes)

    axes = grid[1][1]
    axes.set_title("Failures by class (per second, stacked)")
    classes = series(server, "Failures by class")
    # Failure classes start when they first occur; align them on one time axis, 0 before.
    times = sorted({when for _, stamps, _ in classes for when in stamps})
    stacked = [
        [dict(zip(stamps, values, strict=True)).get(when, 0.0) for when in times]
        for _, stamps, values in classes
    ]
    axes.stackplot(times, *stacked, labels=[name for name, _, _ in classes])
    axes.legend(loc="upper left", fontsize=8)
    _time_axis(axes)

    axes = grid[2][0]
    axes.set_title("Availability by vantage and protocol (2 h)")
    bars = instant(server, "Availability by vantage and protocol")
    axes.barh([name for name, _ in bars], [value for _, value in bars],
              color=["#56a64b" if v >= 0.99 else "#ff9830" if v >= 0.9 else "#e02f44"
                     for _, v in bars])  # fmt: skip
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    axes.tick_params(axis="y", labelsize=7)

    axes = grid[2][1]
    axes.set_title("Time since last success")
    ages = instant(server, "Time since last success")
    # Grafana shows "∞" for a target that never succeeded; a bar cannot be infinite.
    longest = 2 * max((v for _, v in ages if math.isfinite(v)), default=1.0)
    axes.barh([name for name, _ in ages], [min(value, longest) for _, value in ages],
              color=["#56a64b" if v < 300 else "#ff9830" if v < 900 else "#e02f44"
                     for _, v in ages])  # fmt: skip
    for number, (_, value) in enumerate(ages):
        if not math.isfinite(value):
            axes.text(longest, number, " never ", ha="right", va="center", color="white")
    axes.set_xscale("log")
    axes.set_xlabel("seconds")
    axes.tick_params(axis="y", labelsize=7)

    figure.savefig(output, dpi=80, metadata={"Software": None})


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        backfill(fleet.openmetrics_history(START, END), Path(workdir) / "tsdb")
        with running_prometheus(Path(workdir)) as server:
            draw(server, output)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/dashboard.png"))
