"""The report says what it does not know (issue 22): gaps, open edges, partial failures, blips.

Each case is one the independent battery found misleading: a summary calling obfs4 unaffected
at a site where an obfs4 target had 12 incidents; a two-hour gap in the data splitting a
blocking into two smaller incidents, visible only as a break in a chart; a 4-minute failure
that was an incident at one step and a blip at another; incidents running past the range's
edges without saying so.
"""

from __future__ import annotations

import csv
import io
import json
import math

from tests.report.test_incidents import series
from tests.report.test_render import make_report
from vpnwatch.report.incidents import Rules, failing_time, incident_spans
from vpnwatch.report.narrative import summary
from vpnwatch.report.render_html import render_html
from vpnwatch.report.render_text import render_csv, render_json, render_markdown

NAN = math.nan
HEALTHY = [0.0] * 8


def test_a_protocol_is_not_unaffected_where_one_of_its_targets_failed() -> None:
    failing = [0, 10, 10, 0, 0, 0, 10, 10]  # two incidents of target a
    report = make_report(
        series("k", "obfs4", "a", failing),
        *(series("k", "obfs4", name, HEALTHY) for name in ("b", "c", "d", "e")),
        series("k", "tcp", "ctl", HEALTHY, control=True),
    )
    assert [i.scope for i in report.incidents] == ["target", "target"]
    assert summary(report) == [
        "obfs4 worked from site k overall, but 1 of its 5 targets failed (a; 2 incidents)."
    ]


def test_a_protocol_hit_only_by_the_sites_outage_is_not_called_unaffected() -> None:
    down = [0, 10, 10, 10, 0, 0, 0, 0]
    report = make_report(
        series("k", "obfs4", "a", down),
        series("k", "wireguard", "w", HEALTHY),
        series("k", "tcp", "ctl", down, control=True),
    )
    [sentence] = summary(report)
    assert sentence.startswith(
        "From site k no protocol was blocked: obfs4 failed only while the site was offline;"
        " WireGuard unaffected."
    )


def test_a_gap_inside_a_blocking_does_not_split_it_and_is_shown() -> None:
    # 40 min blocked, 2 h without any data, 40 min blocked: one event, not two halves
    blocked = [0.0] + [10.0] * 8 + [NAN] * 24 + [10.0] * 8 + [0.0]
    report = make_report(
        series("k", "wireguard", "w", blocked),
        series("k", "tcp", "ctl", [0.0] * 9 + [NAN] * 24 + [0.0] * 9, control=True),
    )
    protocol = [i for i in report.incidents if i.scope == "protocol"]
    assert len(protocol) == 1
    assert (protocol[0].start, protocol[0].end) == (300.0, 300.0 * 41)
    assert protocol[0].without_data == 2 * 3600
    assert [(g.site, g.protocol, g.start, g.end) for g in report.analysis.gaps] == [
        ("k", "", 300.0 * 9, 300.0 * 33)
    ]
    [sentence] = summary(report)
    assert sentence == (
        "WireGuard unusable from site k for 3 h 20 min (2 h of it without data). No data at all"
        " for 2 h (the monitor was not running or not scraped): nothing is known of that time."
    )
    document = json.loads(render_json(report))
    assert document["gaps"] == [
        {
            "scope": "site", "site": "k", "protocol": "",
            "start": "1970-01-01T00:45:00Z", "end": "1970-01-01T02:45:00Z",
            "start_local": "1970-01-01T00:45:00+00:00", "end_local": "1970-01-01T02:45:00+00:00",
            "duration_seconds": 7200,
        }
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [r["verdict"] for r in rows].count("no data") == 1
    markdown = render_markdown(report)
    assert "| k | all probes | no data |" in markdown
    assert "failing (2 h without data)" in markdown
    html = render_html(report)
    assert "no data</td>" in html
    assert "<title>k: no data for 2 h from 1970-01-01 00:45 UTC</title></rect>" in html


def test_a_protocol_without_data_while_its_site_had_some_is_a_gap_too() -> None:
    report = make_report(
        series("k", "obfs4", "a", [NAN] * 4 + [0.0] * 4),  # added to the config later
        series("k", "tcp", "ctl", HEALTHY, control=True),
    )
    assert [(g.protocol, g.start, g.end) for g in report.analysis.gaps] == [("obfs4", 0.0, 1200.0)]
    assert summary(report)[0].endswith(" No obfs4 data for 20 min.")


def test_incidents_at_the_edges_of_the_range_or_of_a_gap_are_marked_open() -> None:
    report = make_report(
        series("k", "wireguard", "w", [10, 10, 0, 0, 0, 0, 10, 10]),
        series("k", "obfs4", "o", [0, 10, 10, NAN, NAN, 0, 0, 0]),
        series("k", "tcp", "ctl", HEALTHY, control=True),
    )
    edges = {
        (i.protocol, i.start, i.end): (i.open_start, i.open_end)
        for i in report.incidents
        if i.scope == "protocol"
    }
    assert edges == {
        ("wireguard", 0.0, 600.0): (True, False),
        ("wireguard", 1800.0, 2400.0): (False, True),
        ("obfs4", 300.0, 900.0): (False, True),
    }
    incidents = json.loads(render_json(report))["incidents"]
    assert [(i["open_at_start"], i["open_at_end"]) for i in incidents if i["scope"] == "protocol"] == [
        (True, False), (False, True), (False, True)
    ]  # fmt: skip
    markdown = render_markdown(report)
    assert "(00:00 UTC) or earlier |" in markdown
    assert "(00:40 UTC) or later |" in markdown
    assert summary(report)[0].startswith("WireGuard unusable from site k for at least 20 min")


def test_the_minimum_duration_does_not_depend_on_the_step() -> None:
    rules = Rules(merge_gap=0, min_duration=300)
    # a 4-minute failure: 8 of 10 probes of one 5-minute interval, or 4 whole 1-minute ones
    coarse = series("s", "obfs4", "a", [0, 8, 0])
    fine = series("s", "obfs4", "a", [0, 0, 2, 2, 2, 2, 0, 0, 0], probes=2)
    assert failing_time(coarse, (1, 2), 300) == failing_time(fine, (2, 6), 60) == 240
    assert incident_spans(coarse, rules, 300) == incident_spans(fine, rules, 60) == []
    # a 6-minute one straddling two 5-minute intervals, or 6 whole 1-minute ones: kept at both
    coarse = series("s", "obfs4", "a", [0, 6, 6, 0])
    fine = series("s", "obfs4", "a", [0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 0, 0], probes=2)
    assert incident_spans(coarse, rules, 300) == [(1, 3)]
    assert incident_spans(fine, rules, 60) == [(4, 10)]
