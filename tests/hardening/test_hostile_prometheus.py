"""``vpnwatch report`` against a hostile Prometheus: shapes, sizes, speeds and values.

Issue 22 found the report waiting for ever on a server trickling a byte every 2 s, reading an
endless response until memory ran out, and printing tracebacks for a series list that was an
object and for a counter of ``+Inf``. Each case here runs the real command against a small
misbehaving server on loopback (:mod:`tests.hardening.hostile_http`) and requires one line on
stderr, the documented exit status, and an end within the ``--timeout`` given. The fuzz
properties (test_fuzz_report.py) feed API answers through everything after the transport.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hardening.fuzzing import no_hang
from tests.hardening.hostile_http import Behaviour, HostileServer, response
from vpnwatch.report.access import prometheus_access
from vpnwatch.report.cli import EXIT_PROMETHEUS, main
from vpnwatch.report.query import PrometheusClient, PrometheusError

START, END = 1_700_000_000, 1_700_003_600
RANGE = ["--from", "2023-11-14T22:13:20Z", "--to", "2023-11-14T23:13:20Z", "--step", "5m"]
LABELS = {"__name__": "vpnwatch_probes_total", "site": "k", "protocol": "obfs4", "target": "a"}
SERIES_OK = json.dumps({"status": "success", "data": [LABELS]}).encode()


def matrix(values: list[list[Any]], labels: dict[str, Any] | None = None, **data: Any) -> bytes:
    result = [{"metric": LABELS if labels is None else labels, "values": values}]
    answer = {"resultType": "matrix", "result": result, **data}
    return json.dumps({"status": "success", "data": answer}).encode()


def _on_grid(value: str) -> list[list[Any]]:
    return [[START + 300 * i, value] for i in range(13)]


def answer(series: bytes, query_range: bytes | None = None) -> Behaviour:
    """Answer series look-ups with ``series`` and range queries with ``query_range``."""

    async def behave(api: str, writer: asyncio.StreamWriter) -> None:
        body = series if api.endswith("/series") or query_range is None else query_range
        writer.write(response(200, body))

    return behave


def raw(data: bytes, *, then_abort: bool = False) -> Behaviour:
    async def behave(api: str, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if then_abort:
            writer.transport.abort()

    return behave


def trickle(head: bytes, *, pause: float = 0.5) -> Behaviour:
    """``head`` at once, then one byte every ``pause`` seconds, for ever."""

    async def behave(api: str, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        while True:
            await writer.drain()
            await asyncio.sleep(pause)
            writer.write(b"x")

    return behave


async def _silent(api: str, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def _endless(api: str, writer: asyncio.StreamWriter) -> None:
    """A chunked body that never ends, as fast as the client reads."""
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b'[1700000000,"1"],' * 4096
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    while True:
        writer.write(frame)
        await writer.drain()


ERROR_TEXT = "\x1b[2J\x1b]0;pwned\x07 forged\nvpnwatch report: all good"
CASES: dict[str, tuple[Behaviour, str]] = {
    # speeds
    "trickle": (
        trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"),
        "did not answer everything within 3 s (see --timeout)",
    ),
    "trickle-head": (
        trickle(b"HTTP/1.1 200 OK\r\nX-Slow: "),
        "did not answer everything within 3 s",
    ),
    "silent": (_silent, "did not answer everything within 3 s"),
    # sizes
    "huge-declared": (
        raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n{"),
        "/api/v1/series sent more than 256 MiB; narrow --match or the range",
    ),
    "deep": (answer(b"[" * 200_000), "did not answer like a Prometheus API"),
    # shapes
    "series-object": (
        answer(b'{"status":"success","data":{"a":"b"}}'),
        "did not return a list of label sets",
    ),
    "series-numbers": (
        answer(b'{"status":"success","data":[{"site":1}]}'),
        "did not return a list of label sets",
    ),
    "no-data": (answer(b'{"status":"success"}'), "did not answer like a Prometheus API"),
    "not-json": (answer(b"<html>hello</html>"), "did not answer like a Prometheus API"),
    "vector": (
        answer(SERIES_OK, matrix(_on_grid("1")).replace(b'"matrix"', b'"vector"')),
        "query_range did not return a matrix for vpnwatch_probes_total",
    ),
    "labels-not-strings": (
        answer(SERIES_OK, matrix(_on_grid("1"), {"site": 5})),
        "did not return a matrix",
    ),
    "values-not-pairs": (
        answer(SERIES_OK, matrix([[START, "1", "2"]])),
        "did not return a matrix",
    ),
    "outside-the-range": (
        answer(SERIES_OK, matrix([[0, "1"], [START, "2"]])),
        "returned a sample at 0.0, outside the range asked for",
    ),
    # values
    "inf-counter": (
        answer(SERIES_OK, matrix(_on_grid("+Inf"))),
        'vpnwatch_probes_total returned inf for {"protocol": "obfs4"',
    ),
    "huge-counter": (answer(SERIES_OK, matrix(_on_grid("1e308"))), "which is not a counter's"),
    "negative-counter": (answer(SERIES_OK, matrix(_on_grid("-5"))), "returned -5.0 for"),
    # errors and broken connections
    "error-escapes": (
        raw(response(400, json.dumps({"status": "error", "error": ERROR_TEXT}).encode())),
        "\\x1b[2J\\x1b]0;pwned\\x07 forged\\nvpnwatch report: all good (HTTP 400)",
    ),
    "error-html": (raw(response(500, b"<html>" + b"x" * 2_000_000)), "failed: Error (HTTP 500)"),
    "reset-mid-body": (
        raw(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"sta', then_abort=True),
        "the connection closed before the answer was complete",
    ),
    "not-http": (raw(b"SSH-2.0-OpenSSH_9.2\r\n"), "cannot reach Prometheus at http://127.0.0.1:"),
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    behaviours = {name: behaviour for name, (behaviour, _) in CASES.items()}
    with HostileServer({**behaviours, "endless": _endless}).running() as server:
        yield server


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_and_exit_1_within_the_deadline(
    hostile: HostileServer, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with no_hang(60):  # the report's own deadline is 3 s: a hang fails here, not in CI's limit
        status = main(["--prometheus", f"{hostile.url}/{case}", *RANGE, "--timeout", "3s"])
    out, err = capsys.readouterr()
    assert status == EXIT_PROMETHEUS, err
    assert out == ""
    assert err.startswith("vpnwatch report: ") and err.count("\n") == 1, err
    assert err[:-1].isprintable()
    assert CASES[case][1] in err, err


def test_an_endless_response_is_cut_at_the_limit_with_memory_bounded(
    hostile: HostileServer,
) -> None:
    limit = 4 << 20
    client = PrometheusClient(
        prometheus_access(f"{hostile.url}/endless"), max_response_bytes=limit, total_timeout=60
    )
    tracemalloc.start()
    try:
        with no_hang(60), pytest.raises(PrometheusError, match="sent more than 4 MiB"):
            client.series(["up"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit


def test_a_selector_quoted_in_an_error_is_escaped(
    hostile: HostileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    selector = '{site="\u202eevil\u2028x"}'
    status = main(["--prometheus", f"{hostile.url}/series-object", *RANGE, "--match", selector])
    err = capsys.readouterr().err
    assert status == EXIT_PROMETHEUS
    assert 'vpnwatch_probes_total{site="\\u202eevil\\u2028x"} did not return a list' in err
    assert err[:-1].isprintable()
