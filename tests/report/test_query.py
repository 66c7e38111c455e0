"""The Prometheus client's pure parts and its failures (the real server is in test_scenario)."""

from __future__ import annotations

import http.server
import json
import math
from array import array
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hardening.hostile_http import AnsweringHandler, threaded
from vpnwatch.errors import ConfigError
from vpnwatch.report import query
from vpnwatch.report.access import prometheus_access
from vpnwatch.report.query import (
    Grid,
    MatrixSeries,
    PrometheusClient,
    PrometheusError,
    _decode_matrix_generic,
    decode_matrix,
    plan_chunks,
)


def test_chunks_tile_the_grid_exactly() -> None:
    chunks = plan_chunks(86_401, 11_000)
    assert len(chunks) == 8
    assert [i for chunk in chunks for i in chunk] == list(range(86_401))
    assert max(len(chunk) for chunk in chunks) == 11_000
    assert plan_chunks(5, 11_000) == [range(5)]


def test_grid_is_aligned_to_the_step_and_covers_the_range() -> None:
    grid = Grid.covering(1000.0, 2000.0, 300.0)
    assert (grid.start, grid.end, grid.intervals) == (900.0, 2100.0, 4)
    assert grid.index(1500.0) == 2
    assert grid.points == 5


@pytest.mark.parametrize("url", ["file:///etc/passwd", "localhost:9090", "ftp://x"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="give an http:// or https:// URL"):
        prometheus_access(url)


class _Handler(AnsweringHandler):
    """Answers like a Prometheus that rejects the query, or like something else entirely."""

    def do_POST(self) -> None:
        if self.path.startswith("/bad/"):
            body = b'{"status":"error","errorType":"bad_data","error":"parse error at char 5"}'
            self.answer(400, body)
        else:
            self.answer(200, b"<html>not prometheus</html>", "text/html")


@pytest.fixture
def fake_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    with threaded(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_a_rejected_query_reports_prometheus_own_words(fake_server: str) -> None:
    client = PrometheusClient(prometheus_access(f"{fake_server}/bad"))
    with pytest.raises(PrometheusError, match=r"parse error at char 5 \(HTTP 400\)"):
        client.series(["up"])


def test_something_that_is_not_prometheus_is_named(fake_server: str) -> None:
    with pytest.raises(PrometheusError, match="did not answer like a Prometheus API"):
        PrometheusClient(prometheus_access(fake_server)).series(["up"])


def _body(series: list[tuple[dict[str, str], list[tuple[float, str]]]]) -> bytes:
    """A range query's answer as Prometheus writes it (times as numbers, values as strings)."""
    result = [
        {"metric": labels, "values": [[int(t) if t == int(t) else t, v] for t, v in samples]}
        for labels, samples in series
    ]
    payload = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(payload, separators=(",", ":")).encode()


def _same(fast: list[MatrixSeries] | None, reference: list[MatrixSeries] | None) -> bool:
    """Equal down to the bit (NaN and the sign of zero included)."""
    if fast is None or reference is None:
        return fast is reference
    return len(fast) == len(reference) and all(
        a[0] == b[0]
        and array("d", a[1]).tobytes() == array("d", b[1]).tobytes()
        and a[2].tobytes() == b[2].tobytes()
        for a, b in zip(fast, reference, strict=True)
    )


_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: format(Decimal(repr(x)), "f")),
    st.integers(0, 10**20).map(str),
    st.sampled_from(["NaN", "+Inf", "-Inf", "-0", "0", "1e3", "true", "1,2", "]]}", "null"]),
)
_LABEL_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(['"values":[', "]]", '"]', "},{", '[1,"2"]', "\\"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["target", "site", "values", "job"]), _LABEL_TEXT),
            st.lists(st.tuples(st.sampled_from([1.0, 2.5, 1709251200.0]), _VALUES), max_size=5),
        ),
        max_size=4,
    )
)
def test_the_fast_decoder_reads_exactly_what_json_and_float_read(
    series: list[tuple[dict[str, str], list[tuple[float, str]]]],
) -> None:
    body = _body(series)
    assert _same(decode_matrix(body), _decode_matrix_generic(body))


def test_the_fast_decoder_reads_plain_samples_and_special_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(query, "_decode_matrix_generic", None)  # the fast path must do it all
    body = _body(
        [
            ({"target": "a"}, [(1.0, "3"), (31.0, "4.25")]),
            ({"target": "b"}, [(1.5, "NaN"), (31.0, "-0")]),
        ]
    )
    decoded = decode_matrix(body)
    assert decoded is not None
    (labels_a, times_a, values_a), (_, times_b, values_b) = decoded
    assert labels_a == (("target", "a"),)
    assert list(times_a) == [1.0, 31.0] and values_a.tolist() == [3.0, 4.25]
    assert list(times_b) == [1.5, 31.0]
    assert math.isnan(values_b[0]) and math.copysign(1.0, values_b[1]) == -1.0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"status":"error"}',
        b'{"status":"success","data":{"resultType":"vector","result":[]}}',
    ],
)
def test_anything_but_a_matrix_is_not_decoded(body: bytes) -> None:
    assert decode_matrix(body) is None
