"""Command-line values: times, durations, zones and --match selectors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from vpnwatch.report.cli import EXIT_USAGE, auto_step, main, output_format
from vpnwatch.report.selector import Matcher, parse_selector
from vpnwatch.report.timespec import (
    format_duration,
    format_local,
    format_step,
    parse_duration,
    parse_time,
    parse_zone,
)

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC).timestamp()
KARACHI = parse_zone("Asia/Karachi")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("2w", 1209600)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "5", "m5", "1.5h", "-5m", "0s", "5 m", "5M", "101y", "9" * 400 + "s", "5300w"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-24h", NOW - 86400),
        ("now-1h30m", NOW - 5400),
        ("2024-03-10T07:00:00Z", datetime(2024, 3, 10, 7, tzinfo=UTC).timestamp()),
        ("2024-03-10T12:00:00+05:00", datetime(2024, 3, 10, 7, tzinfo=UTC).timestamp()),
        ("2024-03-10 12:00", datetime(2024, 3, 10, 7, tzinfo=UTC).timestamp()),  # in --tz
        ("2024-03-10", datetime(2024, 3, 9, 19, tzinfo=UTC).timestamp()),  # midnight in --tz
    ],
)
def test_times(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW, zone=KARACHI) == expected


@pytest.mark.parametrize("text", ["yesterday", "now+1h", "now-", "2024-13-01", "10/03/2024"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_time(text, now=NOW, zone=KARACHI)


def test_zones() -> None:
    assert parse_zone("utc") is UTC
    assert format_local(NOW, KARACHI) == "2024-03-10 17:00 PKT"
    with pytest.raises(ValueError, match="not a known time zone"):
        parse_zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (60, "1 min"), (1200, "20 min"), (10800, "3 h"), (11520, "3 h 12 min"),
     (90000, "1 d 1 h")],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_step_is_prometheus_notation() -> None:
    assert [format_step(s) for s in (30, 300, 5400, 86400)] == ["30s", "5m", "1h30m", "1d"]


def test_auto_step_is_the_finest_within_the_point_limit() -> None:
    assert auto_step(86400) == 300
    assert auto_step(30 * 86400) == 300  # 8,641 points
    assert auto_step(60 * 86400) == 600
    assert auto_step(365 * 86400) == 3600


def test_output_format_follows_the_file_name() -> None:
    assert output_format(None, Path("r.CSV")) == "csv"
    assert output_format(None, Path("r.txt")) == "html"
    assert output_format("md", Path("r.json")) == "md"
    assert output_format(None, None) == "html"


def test_selector_parsing_and_rendering() -> None:
    selector = parse_selector(""" { site="karachi-1", protocol=~'wire.*', target!="a\\"b", } """)
    assert selector.matchers == (
        Matcher("site", "=", "karachi-1"),
        Matcher("protocol", "=~", "wire.*"),
        Matcher("target", "!=", 'a"b'),
    )
    assert selector.render("m") == 'm{site="karachi-1",protocol=~"wire.*",target!="a\\"b"}'
    assert selector.vantage_only().render("m", Matcher("protocol", "=~", "tcp|tls")) == (
        'm{site="karachi-1",protocol=~"tcp|tls"}'
    )
    assert parse_selector("").render("m") == "m"
    assert str(parse_selector('job="vpnwatch"')) == '{job="vpnwatch"}'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{site=karachi}", "not a list of label matchers"),
        ('{site="a"', "unbalanced braces"),
        ('{site=="a"}', "not a list of label matchers"),
        ('{1site="a"}', "not a list of label matchers"),
        ('{site=""}', "would match every series"),
        ('{site=~".*"}', "would match every series"),
        ('{site="a\\q"}', "escape sequence"),
        ('{__name__="up"}', "__name__ is not a label the report can match on"),
        ('{site="a",__meta_x=~"b"}', "__meta_x is not a label"),
    ],
)
def test_bad_selectors(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_selector(text)


def test_a_selector_on_the_metric_name_is_usage_not_a_failing_prometheus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # It reached Prometheus, which refused it: exit 1, "Prometheus failing" (issue 22, finding 9).
    status = main(["--prometheus", "http://127.0.0.1:9", "--match", '{__name__="up"}'])
    assert status == EXIT_USAGE
    assert capsys.readouterr().err.startswith("vpnwatch report: --match: ")
