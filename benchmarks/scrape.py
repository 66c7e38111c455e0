"""Reading a running ``vpnwatch run`` as Prometheus does: GET /metrics, and differences of scrapes.

Every figure of the in-monitor benchmark comes from the monitor's own exposition, so it is what an
operator's Prometheus would compute: ``rate(process_cpu_seconds_total)`` over
``rate(vpnwatch_probes_total)``, ``histogram_quantile`` over ``vpnwatch_schedule_lateness_seconds``.
The request carries Prometheus' own ``Accept`` (OpenMetrics first) and ``Accept-Encoding: gzip``,
so the monitor does the work a real scrape asks of it. Each scrape's cost to the monitor is timed
too, from the kernel's count of the process's CPU just before and after it: the exposition runs on
the event loop, which does nothing else meanwhile, so that difference is the scrape's.
"""

from __future__ import annotations

import gzip
import http.client
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from benchmarks.measure import process_cpu

LATENESS = "vpnwatch_schedule_lateness_seconds"
#: What Prometheus 2.x sends (its default scrape protocols, OpenMetrics preferred).
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.45 (vpnwatch benchmark)",
}


@dataclass
class Scrape:
    """The figures of one scrape that the benchmark uses; counters summed over their targets."""

    at: float
    cpu_seconds: float
    rss_bytes: float
    probes: float
    failures: Counter[str] = field(default_factory=Counter)
    errors: float = 0.0
    #: ``le`` → cumulative count of the lateness histogram.
    lateness: dict[float, float] = field(default_factory=dict)
    bytes_scraped: int = 0
    #: CPU seconds the monitor spent answering this scrape, and how long the answer took.
    scrape_cpu: float = 0.0
    scrape_wall: float = 0.0


def scrape(port: int, pid: int, timeout: float = 30.0) -> Scrape:
    """GET http://127.0.0.1:PORT/metrics of process ``pid`` and pick out the figures."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    cpu_before, began = process_cpu(pid), time.monotonic()
    try:
        connection.request("GET", "/metrics", headers=PROMETHEUS_HEADERS)
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    wall, cpu = time.monotonic() - began, process_cpu(pid) - cpu_before
    if answer.status != 200:
        raise RuntimeError(f"GET /metrics answered {answer.status}")
    encoding = answer.headers.get("Content-Encoding", "")
    content_type = answer.headers.get("Content-Type", "")
    text = (gzip.decompress(body) if encoding == "gzip" else body).decode()
    got = Scrape(at=time.monotonic(), cpu_seconds=0.0, rss_bytes=0.0, probes=0.0)
    got.bytes_scraped, got.scrape_cpu, got.scrape_wall = len(body), cpu, wall
    parse = openmetrics_families if "openmetrics" in content_type else text_families
    for family in parse(text):
        for sample in family.samples:
            if sample.name == "process_cpu_seconds_total":
                got.cpu_seconds = sample.value
            elif sample.name == "process_resident_memory_bytes":
                got.rss_bytes = sample.value
            elif sample.name == "vpnwatch_probes_total":
                got.probes += sample.value
            elif sample.name == "vpnwatch_probe_failures_total":
                got.failures[sample.labels.get("failure", "?")] += round(sample.value)
            elif sample.name == "vpnwatch_probe_errors_total":
                got.errors += sample.value
            elif sample.name == f"{LATENESS}_bucket":
                got.lateness[float(sample.labels["le"])] = sample.value
    return got


@dataclass(frozen=True)
class Window:
    """What happened between two scrapes; ``scrapes`` are those after the first, the last too."""

    first: Scrape
    last: Scrape
    scrapes: tuple[Scrape, ...] = ()

    @property
    def scrape_cpu(self) -> float:
        return sum(one.scrape_cpu for one in self.scrapes)

    @property
    def seconds(self) -> float:
        return self.last.at - self.first.at

    @property
    def probes(self) -> int:
        return round(self.last.probes - self.first.probes)

    @property
    def cpu_seconds(self) -> float:
        return self.last.cpu_seconds - self.first.cpu_seconds

    @property
    def cpu_per_probe(self) -> float:
        return self.cpu_seconds / self.probes if self.probes else math.nan

    @property
    def failures(self) -> dict[str, int]:
        grown = Counter(self.last.failures)
        grown.subtract(self.first.failures)
        return {failure: round(count) for failure, count in grown.items() if count > 0}

    @property
    def errors(self) -> int:
        return round(self.last.errors - self.first.errors)

    def lateness_buckets(self) -> list[tuple[float, float]]:
        """(le, cumulative count) of the probes started in the window, ``+Inf`` last."""
        return sorted(
            (le, count - self.first.lateness.get(le, 0.0))
            for le, count in self.last.lateness.items()
        )

    def lateness_within(self, bound: float) -> float:
        """The share of the window's probe starts at most ``bound`` s late (``bound``: a bucket)."""
        buckets = dict(self.lateness_buckets())
        total = buckets.get(math.inf, 0.0)
        return buckets[bound] / total if total else math.nan

    def lateness_quantile(self, q: float) -> float:
        """As PromQL's ``histogram_quantile``: linear within the bucket the quantile falls in."""
        buckets = self.lateness_buckets()
        total = buckets[-1][1] if buckets else 0.0
        if not total:
            return math.nan
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in buckets:
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound  # beyond the last finite bucket: its bound, as PromQL
                share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, count
        return math.nan
