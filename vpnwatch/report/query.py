"""A small client for the two Prometheus HTTP API calls a report needs: series and query_range.

Range queries are cut into consecutive chunks of at most ``max_points`` evaluation steps each,
because Prometheus refuses a range query that would return more than 11,000 points per series; a
month at a 30 s step is 86,400 steps, so eight requests. The chunks tile the step grid exactly (no
step is fetched twice or skipped), so the assembled series do not depend on how they were cut.

It uses http.client and blocking calls on purpose: a report is one short batch job whose cost is
parsing JSON, not waiting on the network. One helper thread fetches the next chunk while this one
decodes the last, so Prometheus (on another core) and the decoder work at the same time.

Whatever answers is treated as hostile, because a report is often run against a Prometheus
someone else operates. Every request shares one total deadline (a server trickling a byte at a
time would otherwise keep each read just alive for ever): a watchdog shuts the socket down when
it passes. A response larger than :data:`MAX_RESPONSE_BYTES` is refused as it streams in, and
anything not shaped like the API's answer, or a counter value that is not a count, becomes one
:class:`PrometheusError` line naming the query.

A month at 30 s for 200 targets is tens of millions of points, and the generic way to read them
(a Python list and a string per point, then ``float()`` of each string) costs about half a
microsecond a point. :func:`decode_matrix` reads Prometheus's matrix layout directly instead: it
cuts each series' ``values`` array out of the body, strips the brackets and the quotes around the
numbers, and lets orjson parse the flat list of numbers, a few times faster. Anything it does not
recognise goes through the generic path, so both always give the same values.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import math
import socket
import ssl
import threading
import time
import urllib.parse
from array import array
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from vpnwatch.printable import printable
from vpnwatch.report.access import Access

#: Prometheus rejects range queries returning more points than this per series.
PROMETHEUS_MAX_POINTS = 11_000
#: Points (series x steps) one range request aims at: a response body is ~20 B a point, and
#: two are held at a time (the one being decoded and the one being fetched).
POINT_BUDGET = 1_000_000
#: The largest response read: ten times what a range request aims at, with long labels.
MAX_RESPONSE_BYTES = 256 << 20
#: The most of an error response read to find Prometheus's explanation in it.
_MAX_ERROR_BYTES = 64 << 10
_READ_SIZE = 1 << 20
#: Default time a whole report may spend talking to Prometheus, and a single read may stall.
TOTAL_TIMEOUT = 600.0
STALL_TIMEOUT = 120.0

Labels = tuple[tuple[str, str], ...]
#: One series of a range query: its labels, and its sample times and values in time order.
MatrixSeries = tuple[Labels, Sequence[float], "array[float]"]


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
    """Talks to one Prometheus (or anything serving its HTTP API, e.g. Thanos Query).

    ``total_timeout`` bounds everything the client does from its creation on; ``timeout``
    bounds one connection attempt or one read.
    """

    def __init__(
        self,
        access: Access,
        *,
        timeout: float = STALL_TIMEOUT,
        total_timeout: float = TOTAL_TIMEOUT,
        max_points: int = PROMETHEUS_MAX_POINTS,
        point_budget: int = POINT_BUDGET,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.access = access
        self.url = access.url
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.deadline = time.monotonic() + total_timeout
        self.max_points = min(max_points, PROMETHEUS_MAX_POINTS)
        self.point_budget = point_budget
        self.max_response_bytes = max_response_bytes

    def series(
        self, selectors: list[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        """Label sets of the series matching any selector (in ``[start, end]`` when given)."""
        params: list[tuple[str, str]] = [("match[]", selector) for selector in selectors]
        if start is not None and end is not None:
            params += [("start", _number(start)), ("end", _number(end))]
        data = self._call("/api/v1/series", params)
        if not isinstance(data, list) or not all(map(_is_label_set, data)):
            raise PrometheusError(
                f"{self.url}: the series look-up for {' or '.join(selectors)} did not return a"
                " list of label sets"
            )
        return data

    def query_range(
        self, query: str, grid: Grid, *, expected_series: int = 1
    ) -> dict[Labels, array[float]]:
        """Each result series' values at every grid time, NaN where Prometheus had none.

        ``expected_series`` sizes the chunks so that one response holds about
        ``point_budget`` points: that bounds the memory a response takes.
        """
        per_request = min(self.max_points, max(1, self.point_budget // max(1, expected_series)))
        result: dict[Labels, array[float]] = {}
        for chunk, matrix in self._query_chunks(query, grid, plan_chunks(grid.points, per_request)):
            for labels, times, values in matrix:
                series = result.get(labels)
                if series is None:
                    series = result[labels] = nan_array(grid.points)
                if len(values) == len(chunk):  # a value at every step: the common case
                    series[chunk.start : chunk.stop] = values
                    continue
                for timestamp, value in zip(times, values, strict=True):
                    index = grid.index(timestamp) if math.isfinite(timestamp) else -1
                    if index not in chunk:
                        raise PrometheusError(
                            f"{self.url}: query_range for {query} returned a sample at"
                            f" {timestamp!r}, outside the range asked for"
                        )
                    series[index] = value
        return result

    def _query_chunks(
        self, query: str, grid: Grid, chunks: list[range]
    ) -> Iterator[tuple[range, list[MatrixSeries]]]:
        """Each chunk's decoded result, in order, with the next one fetched meanwhile."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prometheus") as fetcher:

            def fetch(chunk: range) -> Future[bytes]:
                params = [
                    ("query", query),
                    ("start", _number(grid.time(chunk.start))),
                    ("end", _number(grid.time(chunk.stop - 1))),
                    ("step", _number(grid.step)),
                ]
                return fetcher.submit(self._post, "/api/v1/query_range", params)

            pending = fetch(chunks[0])
            for index, chunk in enumerate(chunks):
                body = pending.result()
                if index + 1 < len(chunks):
                    pending = fetch(chunks[index + 1])
                try:
                    matrix = decode_matrix(body)
                except (ValueError, TypeError, KeyError, AttributeError):
                    matrix = None
                del body
                if matrix is None:
                    raise PrometheusError(
                        f"{self.url}: query_range did not return a matrix for {query}"
                    )
                yield chunk, matrix

    def _call(self, path: str, params: list[tuple[str, str]]) -> Any:
        """POST a form to the API and return its ``data`` member."""
        payload = _decode(self._post(path, params))
        if payload is None or payload.get("status") != "success" or "data" not in payload:
            raise PrometheusError(f"{self.url}{path} did not answer like a Prometheus API")
        return payload["data"]

    def _post(self, path: str, params: list[tuple[str, str]]) -> bytes:
        """POST a form to the API (selectors can be long) and return the response body."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._late()
        parsed = urllib.parse.urlsplit(self.url)
        connection: http.client.HTTPConnection
        if parsed.scheme == "https":
            connection = http.client.HTTPSConnection(
                parsed.netloc, timeout=min(self.timeout, remaining), context=self.access.tls
            )
        else:
            connection = http.client.HTTPConnection(
                parsed.netloc, timeout=min(self.timeout, remaining)
            )
        watchdog = threading.Timer(remaining, _shut_down, (connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request(
                "POST",
                parsed.path + path,
                body=urllib.parse.urlencode(params).encode(),
                headers={
                    **dict(self.access.headers),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            response = connection.getresponse()
            if response.status != 200:
                error = _read_at_most(response, _MAX_ERROR_BYTES, truncate=True)
                self._check_in_time()
                raise PrometheusError(f"{self.url}: {path} failed: {_api_error(response, error)}")
            answer = _read_at_most(response, self.max_response_bytes)
            self._check_in_time()
            return answer
        except _TooLarge:
            raise PrometheusError(
                f"{self.url}: {path} sent more than {self.max_response_bytes >> 20} MiB;"
                " narrow --match or the range"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url}: its certificate did not verify"
                f" ({printable(exc.verify_message or 'unknown reason')}); see --prometheus-ca"
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if time.monotonic() >= self.deadline:
                raise self._late() from None
            if isinstance(exc, TimeoutError):
                raise PrometheusError(
                    f"Prometheus at {self.url} stalled: nothing for {self.timeout:g} s"
                ) from None
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url}: {_reason(exc)}"
            ) from None
        finally:
            watchdog.cancel()
            connection.close()

    def _check_in_time(self) -> None:
        """After the watchdog shut the socket, what was read ended early: it is no answer."""
        if time.monotonic() >= self.deadline:
            raise self._late()

    def _late(self) -> PrometheusError:
        return PrometheusError(
            f"Prometheus at {self.url} did not answer everything within"
            f" {self.total_timeout:g} s (see --timeout)"
        )


class _TooLarge(Exception):
    pass


def _shut_down(connection: http.client.HTTPConnection) -> None:
    """Wake a read blocked on ``connection`` when the deadline passes (from another thread).

    The plain socket's shutdown, even under TLS: the TLS object belongs to the reading thread.
    """
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _read_at_most(
    response: http.client.HTTPResponse, limit: int, *, truncate: bool = False
) -> bytes:
    """The body, or _TooLarge as soon as it is longer than ``limit`` (or its first bytes)."""
    if response.length is not None and not truncate:
        if response.length > limit:
            raise _TooLarge
        # one read of the declared length: the fastest, and short of it is IncompleteRead
        return response.read()
    # BytesIO hands its buffer over in getvalue(): the body is not held twice at the end
    body = io.BytesIO()
    while chunk := response.read(min(_READ_SIZE, limit + 1 - body.tell())):
        body.write(chunk)
        if body.tell() > limit:
            if truncate:
                return body.getvalue()
            raise _TooLarge
    if response.length:  # http.client returns what came before the connection closed
        raise http.client.IncompleteRead(b"", response.length)
    return body.getvalue()


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in one printable line of at most 200 characters."""
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed before the answer was complete"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return printable(reason)[:200]


def _is_label_set(item: object) -> bool:
    return isinstance(item, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in item.items()
    )


#: What precedes each series' samples in a matrix response. It cannot occur anywhere else: inside
#: a JSON string every quote is escaped, and no other member of a response holds an array after
#: a key of that name (label values are strings).
_VALUES_KEY = b'"values":['
#: Removing these from a ``values`` array leaves ``time,value,time,value,...``.
_POINT_PUNCTUATION = b'[]"'
#: What that list holds when every time and value is an unsigned JSON number.
_UNSIGNED_NUMBER_BYTES = b"0123456789.eE+,"


def decode_matrix(body: bytes) -> list[MatrixSeries] | None:
    """A successful range query's series, or None if ``body`` is not one.

    The fast path splits the body at each ``"values":[``, parses what remains (labels and the
    envelope, each ``values`` emptied) with orjson, and parses each series' samples as one flat
    array of numbers. A series whose samples are not all plain numbers (``NaN``, ``+Inf``,
    ``-0``) has its values read by ``float()``, and a body whose envelope does not match the
    split is decoded as plain JSON: every path gives the same values.
    """
    head, *tails = body.split(_VALUES_KEY)
    envelope = [head]
    samples: list[bytes] = []
    for tail in tails:
        # the series' object closes after the array: samples hold no brace, and one byte is
        # found much faster than the two brackets before it
        end = tail.find(b"}") - 2
        if end < 1 or tail[end : end + 2] != b"]]":
            return _decode_matrix_generic(body)
        samples.append(tail[:end])  # [t,"v"],...,[t,"v"
        envelope.append(tail[end + 1 :])  # from the array's closing bracket on
    items = _matrix_items(_decode(_VALUES_KEY.join(envelope)))
    if items is None or len(items) != len(samples):
        return _decode_matrix_generic(body)
    decoded: list[MatrixSeries] = []
    for item, text in zip(items, samples, strict=True):
        if item.get("values") != [] or not isinstance(item.get("metric"), dict):
            return _decode_matrix_generic(body)
        flat = _flat_numbers(text)
        if flat is not None:
            # only the values become doubles here: the times are needed only for gaps
            decoded.append((_labels(item), flat[0::2], array("d", flat[1::2])))
            continue
        try:
            points = _samples(orjson.loads(b"[" + text + b"]]"))
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return _decode_matrix_generic(body)
        decoded.append((_labels(item), *points))
    return decoded


def _flat_numbers(samples: bytes) -> list[float] | None:
    """``[t,"v"],[t,"v"`` as ``[t, v, t, v]``, or None unless all are unsigned plain numbers.

    Signs are left to ``float()`` because JSON reads ``-0`` as the integer 0; letters because
    they mean ``NaN``, ``+Inf`` or something that is not a sample at all.
    """
    numbers = samples.translate(None, _POINT_PUNCTUATION)
    if numbers.translate(None, _UNSIGNED_NUMBER_BYTES):
        return None
    try:
        flat: list[float] = orjson.loads(b"[" + numbers + b"]")
    except orjson.JSONDecodeError:
        return None
    # a value holding a comma would shift the pairs: count them to be sure
    return flat if len(flat) == 2 * samples.count(b"[") else None


def _decode_matrix_generic(body: bytes) -> list[MatrixSeries] | None:
    """The reference decoding: JSON, then ``float()`` of each sample's time and value."""
    items = _matrix_items(_decode(body))
    if items is None:
        return None
    try:
        return [(_labels(item), *_samples(item.get("values", []))) for item in items]
    except (ValueError, TypeError, AttributeError, KeyError):
        return None


def _samples(points: list[list[Any]]) -> tuple[list[float], array[float]]:
    """Times and values of ``[[t, "v"], ...]``, as Prometheus writes them."""
    return [float(t) for t, _ in points], array("d", [float(v) for _, v in points])


def _matrix_items(payload: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    if payload is None or payload.get("status") != "success":
        return None
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        return None
    items = data.get("result")
    return items if isinstance(items, list) else None


def _labels(item: Mapping[str, Any]) -> Labels:
    metric = item["metric"]
    if not _is_label_set(metric):
        raise ValueError("labels are not strings")
    return tuple(sorted(metric.items()))


def _decode(body: bytes) -> Mapping[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _api_error(response: http.client.HTTPResponse, body: bytes) -> str:
    """Prometheus explains a rejected query in the JSON body; fall back to the HTTP status.

    Either is the server's text: made one printable line, and cut short.
    """
    payload = _decode(body)
    if payload and isinstance(payload.get("error"), str):
        explanation = payload["error"]
    else:
        explanation = response.reason
    status = f"HTTP {response.status}"
    if response.status in (401, 403):
        status += ": check the credentials (--prometheus-user, --prometheus-token-file)"
    return f"{printable(explanation)[:300]} ({status})"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
