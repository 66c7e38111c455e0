"""Write a monitor's scrape history as OpenMetrics text, for `promtool tsdb create-blocks-from`.

The history is simulated scrape by scrape from a function that decides each probe's outcome, with
the metric shapes vpnwatch exports (see vpnwatch/metrics.py): a failure series appears at the first
failure of its (failure, stage), as prometheus_client does; timestamps are in seconds; the file ends
with ``# EOF``. One probe per target per scrape, run halfway between scrapes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

BUCKETS = (0.1, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Target:
    site: str
    name: str
    protocol: str
    role: str = "target"
    transport: str = "udp"

    @property
    def labels(self) -> str:
        return f'site="{self.site}",target="{self.name}",protocol="{self.protocol}"'


#: (failure class, stage) for a failed probe, or the handshake seconds of a successful one
Outcome = tuple[str, str] | float
Decide = Callable[[Target, float], Outcome]


@dataclass
class _History:
    """One target's counters after each scrape."""

    probes: list[int] = field(default_factory=list)
    success: list[int] = field(default_factory=list)
    buckets: list[tuple[int, ...]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    #: (failure, stage) -> (index of the first scrape that has the series, its values from there)
    failures: dict[tuple[str, str], tuple[int, list[int]]] = field(default_factory=dict)


def simulate(target: Target, scrapes: Sequence[int], decide: Decide) -> _History:
    history = _History()
    seconds = 0.0
    buckets = [0] * (len(BUCKETS) + 1)
    failed: dict[tuple[str, str], int] = {}
    interval = scrapes[1] - scrapes[0] if len(scrapes) > 1 else 30
    for index, scrape in enumerate(scrapes):
        outcome = decide(target, scrape - interval / 2)
        probes = index + 1
        if isinstance(outcome, tuple):
            failed[outcome] = failed.get(outcome, 0) + 1
            if outcome not in history.failures:
                history.failures[outcome] = (index, [])
        else:
            seconds += outcome
            buckets[bisect.bisect_left(BUCKETS, outcome)] += 1
        history.probes.append(probes)
        history.success.append(0 if isinstance(outcome, tuple) else 1)
        history.buckets.append(tuple(buckets))
        history.seconds.append(seconds)
        for kind, (_first, values) in history.failures.items():
            values.append(failed[kind])
    return history


def write_openmetrics(
    out: TextIO, targets: Iterable[Target], scrapes: Sequence[int], decide: Decide
) -> None:
    """The whole history, family by family, each series in time order, then ``# EOF``."""
    histories = [(target, simulate(target, scrapes, decide)) for target in targets]

    out.write("# TYPE vpnwatch_probes counter\n")
    for target, history in histories:
        _series(out, "vpnwatch_probes_total", target.labels, scrapes, history.probes)

    out.write("# TYPE vpnwatch_probe_failures counter\n")
    for target, history in histories:
        for (failure, stage), (first, values) in sorted(history.failures.items()):
            labels = f'{target.labels},failure="{failure}",stage="{stage}"'
            _series(out, "vpnwatch_probe_failures_total", labels, scrapes[first:], values)

    out.write("# TYPE vpnwatch_probe_success gauge\n")
    for target, history in histories:
        _series(out, "vpnwatch_probe_success", target.labels, scrapes, history.success)

    out.write("# TYPE vpnwatch_handshake_duration_seconds histogram\n")
    name = "vpnwatch_handshake_duration_seconds"
    for target, history in histories:
        cumulative = [_cumulative(counts) for counts in history.buckets]
        for position, bound in enumerate([*map(str, BUCKETS), "+Inf"]):
            labels = f'{target.labels},le="{bound}"'
            column = [row[position] for row in cumulative]
            _series(out, f"{name}_bucket", labels, scrapes, column)
        _series(out, f"{name}_sum", target.labels, scrapes, history.seconds)
        _series(out, f"{name}_count", target.labels, scrapes, [row[-1] for row in cumulative])

    out.write("# TYPE vpnwatch_target_info gauge\n")
    for target, _history in histories:
        labels = (
            f'{target.labels},endpoint="{target.name}.example.invalid:443",'
            f'transport="{target.transport}",role="{target.role}"'
        )
        _series(out, "vpnwatch_target_info", labels, scrapes, [1] * len(scrapes))
    out.write("# EOF\n")


def _cumulative(counts: tuple[int, ...]) -> list[int]:
    running, result = 0, []
    for count in counts:
        running += count
        result.append(running)
    return result


def _series(
    out: TextIO, name: str, labels: str, times: Sequence[int], values: Sequence[float]
) -> None:
    prefix = f"{name}{{{labels}}} "
    out.writelines(f"{prefix}{value} {time}\n" for time, value in zip(times, values, strict=True))
