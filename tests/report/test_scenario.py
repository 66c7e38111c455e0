"""The report against a real Prometheus serving the scripted day of tests/report/scenario.py."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.report import chromium, pdf, scenario
from tests.stack.promlib import backfill_file, free_port, serving_tsdb
from vpnwatch.messages import load as load_messages
from vpnwatch.report.access import prometheus_access
from vpnwatch.report.cli import main
from vpnwatch.report.dataset import load_dataset
from vpnwatch.report.incidents import Rules, analyse
from vpnwatch.report.query import Grid, PrometheusClient
from vpnwatch.report.selector import parse_selector

DAY_ARGS = ["--from", "2024-03-10T00:00:00Z", "--to", "2024-03-11T00:00:00Z"]
#: Set to a directory to keep the pictures (docs/ for the README's).
SCREENSHOTS = os.environ.get("VPNWATCH_SCREENSHOTS")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    scenario.write(work / "scenario.om")
    backfill_file(work / "scenario.om", work / "tsdb")
    with serving_tsdb(work / "tsdb", work) as url:
        yield url


def report(tmp_path: Path, url: str, *args: str, fmt: str = "json") -> Path:
    out = tmp_path / f"report.{fmt}"
    status = main(["--prometheus", url, *DAY_ARGS, "--tz", "Asia/Karachi", *args, "-o", str(out)])
    assert status == 0
    return out


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_finds_exactly_the_scripted_incidents(prometheus: str, tmp_path: Path) -> None:
    document = json.loads(report(tmp_path, prometheus).read_text())
    step = document["report"]["step_seconds"]
    found = sorted(
        (i["scope"], i["site"], i["protocol"], tuple(i["targets"]), i["verdict"],
         _epoch(i["start"]), _epoch(i["end"]))
        for i in document["incidents"]
    )  # fmt: skip
    expected = sorted(
        (e.scope, e.site, e.protocol, e.targets, e.verdict, e.start, e.end)
        for e in scenario.expected_incidents()
    )
    assert [f[:5] for f in found] == [e[:5] for e in expected]
    for got, want in zip(found, expected, strict=True):
        assert abs(got[5] - want[5]) <= step, got
        assert abs(got[6] - want[6]) <= step, got


def test_the_offline_period_is_offline_and_blocking_is_failing(
    prometheus: str, tmp_path: Path
) -> None:
    incidents = json.loads(report(tmp_path, prometheus).read_text())["incidents"]
    offline = [i for i in incidents if i["verdict"] == "offline"]
    assert {i["site"] for i in offline} == {scenario.LAHORE}
    assert all(i["start"] == "2024-03-10T20:00:00Z" for i in offline)
    assert all(i["control_success_ratio"] == 0.0 for i in offline)
    failing = [i for i in incidents if i["verdict"] == "failing"]
    assert failing
    assert all(i["control_success_ratio"] == 1.0 for i in failing)


def test_incidents_carry_failure_classes_stages_and_latency(
    prometheus: str, tmp_path: Path
) -> None:
    incidents = json.loads(report(tmp_path, prometheus).read_text())["incidents"]
    by_what = {(i["scope"], i["site"], i["protocol"], i["start"][11:16]): i for i in incidents}
    wireguard = by_what["protocol", scenario.KARACHI, "wireguard", "02:00"]
    assert wireguard["failure_classes"] == {"timeout": 720}
    assert wireguard["stages"] == {"handshake": 720}
    assert wireguard["latency_during_seconds"] is None  # nothing succeeded
    openvpn = by_what["protocol", scenario.KARACHI, "openvpn", "08:00"]
    assert openvpn["success_ratio"] == 0.4
    assert openvpn["failure_classes"] == {"reset": 360}
    assert openvpn["stages"] == {"tls": 360}
    assert openvpn["latency_before_seconds"] == pytest.approx(scenario.HANDSHAKE_SECONDS["openvpn"])
    assert openvpn["latency_during_seconds"] == pytest.approx(scenario.SLOW_OPENVPN_SECONDS)
    refused_key = by_what["target", scenario.LAHORE, "wireguard", "06:00"]
    assert refused_key["failure_classes"] == {"auth": 120}


def test_summary_names_blocked_and_unaffected_protocols(prometheus: str, tmp_path: Path) -> None:
    summary = json.loads(report(tmp_path, prometheus).read_text())["summary"]
    karachi, lahore = summary
    assert karachi.startswith("WireGuard unusable from site karachi-1 for 3 h;")
    assert "OpenVPN degraded for 5 h (40% of handshakes succeeded)" in karachi
    assert karachi.endswith("obfs4 unaffected.")
    assert "own network was down for 20 min" in lahore


def test_chunked_queries_give_the_same_data(prometheus: str) -> None:
    grid = Grid.covering(scenario.at(0), scenario.at(24), 60.0)
    whole = load_dataset(PrometheusClient(prometheus_access(prometheus)), grid, parse_selector(""))
    chunked = load_dataset(
        PrometheusClient(prometheus_access(prometheus), max_points=97), grid, parse_selector("")
    )
    assert chunked.sha256 == whole.sha256
    assert analyse(chunked, Rules()).incidents == analyse(whole, Rules()).incidents


def test_match_selects_targets_but_keeps_the_sites_controls(
    prometheus: str, tmp_path: Path
) -> None:
    selector = '{site="lahore-2",protocol="obfs4"}'
    incidents = json.loads(report(tmp_path, prometheus, "--match", selector).read_text())[
        "incidents"
    ]
    assert {(i["scope"], i["protocol"], i["verdict"]) for i in incidents} == {
        ("site", "controls", "offline"),
        ("protocol", "obfs4", "offline"),
        ("target", "obfs4", "offline"),
    }


def test_csv_carries_the_same_incidents_as_json(prometheus: str, tmp_path: Path) -> None:
    document = json.loads(report(tmp_path, prometheus).read_text())
    with report(tmp_path, prometheus, fmt="csv").open(newline="") as rows:
        table = list(csv.DictReader(rows))
    assert [(r["scope"], r["site"], r["start"], r["end"], r["verdict"]) for r in table] == [
        (i["scope"], i["site"], i["start"], i["end"], i["verdict"]) for i in document["incidents"]
    ]


def test_markdown_has_summary_incidents_and_provenance(prometheus: str, tmp_path: Path) -> None:
    text = report(tmp_path, prometheus, fmt="md").read_text()
    assert "WireGuard unusable from site karachi-1 for 3 h" in text
    assert "| 2024-03-10 07:00 PKT (02:00 UTC) |" in text
    assert "vpnwatch_probe_failures_total" in text
    assert "SHA-256 of the data: `" in text


def test_html_opens_in_chromium_without_console_errors(prometheus: str, tmp_path: Path) -> None:
    html = report(tmp_path, prometheus, fmt="html")
    text = html.read_text()
    assert "src=" not in text
    assert "<script" not in text
    page = chromium.open_page(html)
    assert page.console == []
    assert "WireGuard unusable from site karachi-1 for 3 h" in page.dom
    assert page.dom.count("<svg") == 4  # WireGuard, OpenVPN, obfs4, controls
    assert "2024-03-10 07:00 PKT" in page.dom
    assert "2024-03-10 02:00 UTC" in page.dom
    png = tmp_path / "report.png"
    chromium.screenshot(html, png)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_the_console_check_sees_script_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>missingFunction()</script>")
    assert any("missingFunction" in line for line in chromium.open_page(broken).console)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-03-11T00:00:00Z", "--to", "2024-03-10T00:00:00Z"], "--from: is after"),
        (["--from", "2024-03-10T00:00:00Z", "--to", "2024-03-10T00:00:00Z"], "empty range"),
        (["--from", "2023-01-01", "--to", "2023-01-02"], "no probe data in the requested time"),
        ([*DAY_ARGS, "--match", '{site="nowhere-9"}'], '--match {site="nowhere-9"}: no'),
        ([*DAY_ARGS, "--match", "{site=karachi}"], "--match: "),
        ([*DAY_ARGS, "--tz", "Mars/Olympus"], "--tz: 'Mars/Olympus' is not a known time zone"),
        (["--from", "yesterday"], "--from: 'yesterday' is not a time"),
        ([*DAY_ARGS, "--threshold", "1.5"], "--threshold: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    prometheus: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--prometheus", prometheus, *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert message in captured.err


def test_unreachable_prometheus_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--prometheus", url, *DAY_ARGS]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"cannot reach Prometheus at {url}" in error


def test_pdf_report_pages_render_and_hold_the_incidents_table(
    prometheus: str, tmp_path: Path
) -> None:
    out = report(tmp_path, prometheus, fmt="pdf")
    assert out.read_bytes().startswith(b"%PDF-")
    pages = pdf.pages_as_png(out, tmp_path / "pages", dpi=80)
    assert len(pages) >= 2
    assert all(png.read_bytes().startswith(b"\x89PNG") for png in pages)
    assert all(pdf.inked_share(out, number) > 0.005 for number in range(1, len(pages) + 1))
    assert "SHA-256 of the data" in pdf.text(out)
    # the page with the incidents table: its header and the WireGuard incident's first row
    table = next(
        number
        for number in range(1, len(pages) + 1)
        if "Failures (dominant)" in pdf.text(out, number)
    )
    rows = pdf.text(out, table)
    assert "Incidents" in rows
    assert "2024-03-10 07:00 PKT" in rows
    if SCREENSHOTS:
        shutil.copy(pages[table - 1], Path(SCREENSHOTS) / "report-pdf.png")


def test_a_report_says_in_one_line_what_it_wrote(
    prometheus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = report(tmp_path, prometheus)
    assert capsys.readouterr().err == (
        f"vpnwatch report: wrote {out}: 7 incidents (10 per-target incidents) at 2 sites from"
        " 14 targets, 2024-03-10 00:00 UTC to 2024-03-11 00:00 UTC\n"
    )


def test_pdf_needs_a_file(prometheus: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--prometheus", prometheus, *DAY_ARGS, "--format", "pdf"]) == 2
    assert capsys.readouterr().err == "vpnwatch report: --format pdf: give a file with -o\n"


def test_urdu_report_is_right_to_left_with_every_heading_translated(
    prometheus: str, tmp_path: Path
) -> None:
    html = report(tmp_path, prometheus, "--lang", "ur", fmt="html")
    text = html.read_text()
    urdu, english = load_messages("ur"), load_messages("en")
    assert '<html lang="ur" dir="rtl">' in text
    for key in ("report.title", "report.summary", "report.incidents", "report.column.verdict"):
        assert urdu(key) in text
        assert f">{english(key)}<" not in text
    assert urdu("verdict.failing") in text
    assert chromium.open_page(html).console == []
    summary = json.loads(report(tmp_path, prometheus, "--lang", "ur").read_text())["summary"]
    # the site's name kept left-to-right inside the sentence (Unicode isolates)
    assert summary[0].startswith(
        "WireGuard سائٹ \u2066karachi-1\u2069 سے 3 گھنٹے تک ناقابلِ استعمال"
    )
