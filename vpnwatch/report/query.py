"""A small client for the two Prometheus HTTP API calls a report needs: series and query_range.

Range queries are cut into consecutive chunks of at most ``max_points`` evaluation steps each,
because Prometheus refuses a range query that would return more than 11,000 points per series; a
month at a 30 s step is 86,400 steps, so eight requests. The chunks tile the step grid exactly (no
step is fetched twice or skipped), so the assembled series do not depend on how they were cut.

It uses urllib and blocking calls on purpose: a report is one short batch job whose cost is parsing
JSON, not waiting on the network.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: Prometheus rejects range queries returning more points than this per series.
PROMETHEUS_MAX_POINTS = 11_000
#: Points (series x steps) one range request aims at: a decoded response costs ~150 B a point.
POINT_BUDGET = 500_000

Labels = tuple[tuple[str, str], ...]


class PrometheusError(Exception):
    """Prometheus could not be reached, or refused or failed a request: one line for the user."""


@dataclass(frozen=True, slots=True)
class Grid:
    """Evaluation times ``start + k * step`` for ``k`` in ``0..intervals``.

    Interval ``i`` is the half-open span ``(time(i), time(i + 1)]``: what a counter gained between
    two consecutive evaluations happened in it.
    """

    start: float
    step: float
    intervals: int

    @classmethod
    def covering(cls, start: float, end: float, step: float) -> Grid:
        """The grid on multiples of ``step`` that covers ``[start, end]``: round times read well."""
        first = math.floor(start / step) * step
        last = math.ceil(end / step) * step
        return cls(first, step, max(1, round((last - first) / step)))

    @property
    def end(self) -> float:
        return self.time(self.intervals)

    @property
    def points(self) -> int:
        return self.intervals + 1

    def time(self, index: int) -> float:
        return self.start + index * self.step

    def index(self, timestamp: float) -> int:
        return round((timestamp - self.start) / self.step)


def plan_chunks(points: int, max_points: int) -> list[range]:
    """Consecutive index ranges covering ``0..points-1``, none longer than ``max_points``."""
    if points <= 0 or max_points <= 0:
        raise ValueError("points and max_points must be positive")
    return [range(first, min(first + max_points, points)) for first in range(0, points, max_points)]


def nan_array(length: int) -> array[float]:
    """A float64 array of NaN: the report's representation of "no sample here"."""
    return array("d", [math.nan]) * length


class PrometheusClient:
    """Talks to one Prometheus (or anything serving its HTTP API, e.g. Thanos Query)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 120.0,
        max_points: int = PROMETHEUS_MAX_POINTS,
        point_budget: int = POINT_BUDGET,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PrometheusError(f"--prometheus: {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_points = min(max_points, PROMETHEUS_MAX_POINTS)
        self.point_budget = point_budget

    def series(
        self, selectors: list[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        """Label sets of the series matching any selector (in ``[start, end]`` when given)."""
        params: list[tuple[str, str]] = [("match[]", selector) for selector in selectors]
        if start is not None and end is not None:
            params += [("start", _number(start)), ("end", _number(end))]
        data = self._call("/api/v1/series", params)
        return [dict(labels) for labels in data]

    def query_range(
        self, query: str, grid: Grid, *, expected_series: int = 1
    ) -> dict[Labels, array[float]]:
        """Each result series' values at every grid time, NaN where Prometheus had none.

        ``expected_series`` sizes the chunks so that one response holds about
        ``point_budget`` points: that bounds the memory a decoded response takes.
        """
        per_request = min(self.max_points, max(1, self.point_budget // max(1, expected_series)))
        result: dict[Labels, array[float]] = {}
        for chunk in plan_chunks(grid.points, per_request):
            for labels, values in self._query_chunk(query, grid, chunk):
                series = result.get(labels)
                if series is None:
                    series = result[labels] = nan_array(grid.points)
                if len(values) == len(chunk):  # a value at every step: the common case
                    series[chunk.start : chunk.stop] = array("d", [float(v) for _, v in values])
                    continue
                for timestamp, value in values:
                    series[grid.index(timestamp)] = float(value)
        return result

    def _query_chunk(
        self, query: str, grid: Grid, chunk: range
    ) -> Iterator[tuple[Labels, list[tuple[float, str]]]]:
        params = [
            ("query", query),
            ("start", _number(grid.time(chunk.start))),
            ("end", _number(grid.time(chunk.stop - 1))),
            ("step", _number(grid.step)),
        ]
        data = self._call("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"{self.url}: query_range did not return a matrix for {query}")
        for item in data["result"]:
            yield tuple(sorted(item["metric"].items())), item["values"]

    def _call(self, path: str, params: list[tuple[str, str]]) -> Any:
        """POST a form to the API (selectors can be long) and return its ``data`` member."""
        body = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            self.url + path,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (as above)
                payload = _decode(response.read())
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"{self.url}: {path} failed: {_api_error(exc)}") from None
        except urllib.error.URLError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc.reason}") from None
        except TimeoutError:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        if payload is None or payload.get("status") != "success":
            raise PrometheusError(f"{self.url}{path} did not answer like a Prometheus API")
        return payload["data"]


def _decode(body: bytes) -> Mapping[str, Any] | None:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _api_error(exc: urllib.error.HTTPError) -> str:
    """Prometheus explains a rejected query in the JSON body; fall back to the HTTP status."""
    try:
        payload = _decode(exc.read())
    except OSError:
        payload = None
    if payload and isinstance(payload.get("error"), str):
        return f"{payload['error']} (HTTP {exc.code})"
    return f"HTTP {exc.code} {exc.reason}"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
