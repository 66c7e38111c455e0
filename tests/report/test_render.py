"""What the formats say, on hand-made analyses (the real-Prometheus run is in test_scenario)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from tests.report.test_incidents import dataset, series
from vpnwatch.messages import load
from vpnwatch.report.dataset import ProbeSeries
from vpnwatch.report.incidents import Rules, analyse
from vpnwatch.report.narrative import Report, summary
from vpnwatch.report.render_html import FAILURE_KEYS, render_html
from vpnwatch.report.render_text import render_csv, render_json
from vpnwatch.report.timespec import parse_zone
from vpnwatch.result import Failure


def make_report(*members: ProbeSeries, zone: str = "UTC", start: float = 0.0) -> Report:
    data = dataset(*members, start=start)
    return Report(
        prometheus="http://127.0.0.1:9090",
        start=data.grid.start,
        end=data.grid.end,
        zone=parse_zone(zone),
        zone_name=zone,
        selector="{}",
        dataset=data,
        analysis=analyse(data, Rules()),
    )


def test_every_failure_class_is_explained() -> None:
    assert set(FAILURE_KEYS) == set(Failure)
    english = load("en")
    assert all(english(key) for key in FAILURE_KEYS.values())


def test_summary_tells_unusable_from_degraded_and_lists_the_unaffected() -> None:
    report = make_report(
        series("k", "wireguard", "wg", [0, 10, 10, 10, 0]),
        series("k", "openvpn", "ov", [0, 7, 7, 0, 0]),
        series("k", "obfs4", "o4", [0, 0, 0, 0, 0]),
        series("k", "tcp", "ctl", [0, 0, 0, 0, 0], control=True),
    )
    assert summary(report) == [
        "WireGuard unusable from site k for 15 min; OpenVPN degraded for 10 min"
        " (30% of handshakes succeeded); obfs4 unaffected."
    ]


def test_summary_without_controls_says_what_it_cannot_tell() -> None:
    report = make_report(series("k", "obfs4", "o4", [0, 0, 0]))
    assert summary(report) == [
        "From site k no protocol was blocked: obfs4 unaffected. No control probes ran at this"
        " site, so blocking cannot be told apart from a local outage."
    ]


def test_json_and_csv_carry_the_same_incidents() -> None:
    report = make_report(
        series("k", "wireguard", "a", [0, 10, 10, 0]),
        series("k", "wireguard", "b", [0, 10, 10, 0]),
        series("k", "tcp", "ctl", [0, 0, 0, 0], control=True),
    )
    incidents = json.loads(render_json(report))["incidents"]
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(incidents) == len(rows) == 3
    assert rows[0]["targets"] == "a b"
    assert rows[0]["failure_classes"] == "timeout:40"
    assert rows[0]["latency_during_seconds"] == ""
    assert incidents[0]["latency_during_seconds"] is None
    assert [r["start"] for r in rows] == [i["start"] for i in incidents]


def test_labels_from_prometheus_cannot_inject_markup() -> None:
    hostile = '<script>alert("x")</script>'
    report = make_report(series(hostile, "obfs4", hostile, [0, 10, 10, 0]))
    html = render_html(report)
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_times_show_the_zone_and_utc() -> None:
    start = datetime(2024, 3, 10, tzinfo=UTC).timestamp()
    report = make_report(
        series("k", "obfs4", "o4", [0, 10, 10, 0]), zone="Asia/Karachi", start=start
    )
    html = render_html(report)
    assert "2024-03-10 05:05 PKT" in html
    assert "2024-03-10 00:05 UTC" in html
