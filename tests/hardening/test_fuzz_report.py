"""Fuzzing the report's inputs: Prometheus API answers, mutated or generated, through it all.

Series look-ups and range queries are mutated from valid answers, or generated with tricky
sample values and hostile label values, and go through loading, counting, incident finding and
every output format. Only the report's own two errors may come out, each one line. The
transport (speeds, sizes, broken connections) is tested against real sockets in
test_hostile_prometheus.py.
"""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import FUZZ, count, mutated, no_hang
from tests.hardening.test_hostile_prometheus import END, SERIES_OK, START, matrix
from vpnwatch.report.access import prometheus_access
from vpnwatch.report.cli import RENDERERS
from vpnwatch.report.dataset import NoDataError, load_dataset
from vpnwatch.report.incidents import Rules, analyse
from vpnwatch.report.narrative import Report
from vpnwatch.report.query import Grid, PrometheusClient, PrometheusError
from vpnwatch.report.selector import parse_selector
from vpnwatch.report.timespec import parse_zone


class _Canned(PrometheusClient):
    """A client whose every answer is given: the transport has its own tests, next door."""

    def __init__(self, series: bytes, query_range: bytes) -> None:
        super().__init__(prometheus_access("http://127.0.0.1:9"))
        self.answers = {"/api/v1/series": series, "/api/v1/query_range": query_range}

    def _post(self, path: str, params: list[tuple[str, str]]) -> bytes:
        return self.answers[path]


GRID = Grid(START, 300.0, 12)


def _report_or_its_errors(series: bytes, query_range: bytes) -> None:
    """The whole report on these answers: a document in every format, or one of its errors."""
    count("report answers")
    client = _Canned(series, query_range)
    try:
        with no_hang():
            dataset = load_dataset(client, GRID, parse_selector(""))
            analysis = analyse(dataset, Rules())
            report = Report(
                client.url, START, END, parse_zone("UTC"), "UTC", "{}", dataset, analysis
            )
            for render in RENDERERS.values():
                render(report)
    except (PrometheusError, NoDataError) as exc:
        assert "\n" not in str(exc)


MATRIX_SEED = matrix(
    [
        [START + 300 * i, str(v)]
        for i, v in enumerate([0, 10, 20, 30, 5, 15, 25, 35, 45, 55, 65, 75, 85])
    ]
)


@FUZZ
@given(st.data())
def test_mutated_range_answers(data: st.DataObject) -> None:
    body = data.draw(mutated([MATRIX_SEED], max_size=4096))
    _report_or_its_errors(SERIES_OK, body)


@FUZZ
@given(mutated([SERIES_OK, b'{"status":"success","data":[]}'], max_size=2048))
def test_mutated_series_answers(body: bytes) -> None:
    _report_or_its_errors(body, MATRIX_SEED)


_SAMPLE_TEXT = st.sampled_from(
    ["0", "1", "10", "NaN", "+Inf", "-Inf", "-0", "1e308", "9007199254740993", "-1", "0.5",
     "1e-320", "", " 1", "0x10", "1_000", "١٢"]
)  # fmt: skip
_LABEL_VALUE = st.text(max_size=20) | st.sampled_from(["=1+1", "<script>", "a|b", "\x1b[2J"])


@FUZZ
@given(
    samples=st.lists(
        st.tuples(st.integers(-2, 14), _SAMPLE_TEXT | st.floats() | st.none()),
        max_size=16,
    ),
    labels=st.dictionaries(
        st.sampled_from(["site", "protocol", "target", "failure", "stage", "__name__"]),
        _LABEL_VALUE,
    ),
)
def test_generated_values_and_labels(
    samples: list[tuple[int, object]], labels: dict[str, str]
) -> None:
    values = [[START + 300 * i, v] for i, v in samples]
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": values}
    ]}}, allow_nan=True).encode()  # fmt: skip
    series = json.dumps({"status": "success", "data": [labels]}).encode()
    _report_or_its_errors(series, body)


def test_the_fuzz_seeds_make_a_report() -> None:
    """The seeds are valid: mutations start from a report that works."""
    client = _Canned(SERIES_OK, MATRIX_SEED)
    dataset = load_dataset(client, GRID, parse_selector(""))
    assert not any(math.isnan(v) for v in dataset.series[0].probes)
