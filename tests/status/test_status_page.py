"""``vpnwatch status`` against a real Prometheus serving the scripted fortnight of scenario.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.report import chromium, pdf
from tests.stack.promlib import backfill_file, serving_tsdb
from tests.status import scenario
from vpnwatch import cli
from vpnwatch.messages import load
from vpnwatch.status.board import Board
from vpnwatch.status.cli import build_status

ARGS = ["--at", scenario.AT, "--days", str(scenario.DAYS), "--tz", "Asia/Karachi"]
#: Set to a directory to keep the screenshots (docs/ for the README's).
SCREENSHOTS = os.environ.get("VPNWATCH_SCREENSHOTS")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    for history in scenario.write(work):
        backfill_file(history, work / "tsdb", max_block_duration="336h")
        history.unlink()
    with serving_tsdb(work / "tsdb", work) as url:
        yield url


@pytest.fixture(scope="module")
def board(prometheus: str) -> Board:
    args = cli._parser().parse_args(["status", "--prometheus", prometheus, *ARGS])
    return build_status(args, now=scenario.NOW + 3600)


@pytest.fixture(scope="module")
def page(prometheus: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "status.html"
    assert cli.main(["status", "--prometheus", prometheus, *ARGS, "-o", str(out)]) == 0
    return out


def test_one_row_per_protocol_and_site_with_the_state_now(board: Board) -> None:
    assert [(row.site, row.protocol, row.state) for row in board.rows] == [
        ("karachi-1", "wireguard", "failing"),
        ("karachi-1", "openvpn", "operational"),
        ("karachi-1", "obfs4", "operational"),
        ("lahore-2", "wireguard", "operational"),
        ("lahore-2", "openvpn", "operational"),
        ("lahore-2", "obfs4", "operational"),
    ]


def test_each_day_bar_has_the_worst_state_of_the_readers_day(board: Board) -> None:
    def days(site: str, protocol: str) -> dict[str, str]:
        row = next(r for r in board.rows if (r.site, r.protocol) == (site, protocol))
        zone = board.zone
        return {
            datetime.fromtimestamp(day.start, zone).strftime("%m-%d"): day.state
            for day in row.days
            if day.state != "operational"
        }

    assert len(board.rows[0].days) == scenario.DAYS
    assert days("karachi-1", "wireguard") == {"03-04": "failing", "03-14": "failing"}
    assert days("karachi-1", "openvpn") == {"03-07": "degraded"}
    assert days("karachi-1", "obfs4") == {}
    # 20:00 UTC on the 10th is 01:00 on the 11th in Karachi, the reader's zone
    assert days("lahore-2", "wireguard") == {"03-11": "offline"}
    assert days("lahore-2", "obfs4") == {"03-01": "no_data", "03-02": "no_data", "03-11": "offline"}


def test_incidents_carry_their_verdicts_newest_first(board: Board) -> None:
    step = 300

    def utc(timestamp: float) -> str:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%d %H:%M")

    found = [(o.site, o.protocol, o.state, o.ongoing, utc(o.start)) for o in board.outages]
    assert found == [
        ("karachi-1", "wireguard", "failing", True, "14 09:00"),
        ("lahore-2", "controls", "offline", False, "10 20:00"),
        ("karachi-1", "openvpn", "degraded", False, found[2][4]),
        ("karachi-1", "wireguard", "failing", False, "04 02:00"),
    ]
    degraded = board.outages[2]
    assert abs(degraded.start - scenario.at(7, 8)) <= step
    assert abs(degraded.end - scenario.at(7, 13)) <= step
    assert 0.3 < degraded.success < 0.5


def test_page_has_no_endpoint_and_no_target_name_unless_asked(
    prometheus: str, page: Path, tmp_path: Path
) -> None:
    html = page.read_text()
    assert "example.invalid" not in html
    assert "wg-karachi-1" not in html
    shown = tmp_path / "endpoints.html"
    argv = ["status", "--prometheus", prometheus, *ARGS, "--show-endpoints", "-o", str(shown)]
    assert cli.main(argv) == 0
    listed = shown.read_text()
    assert "wg-karachi-1: <code>wg-karachi-1.example.invalid:443</code>" in listed
    assert "ctl-tcp-karachi-1" not in listed  # control probes are not the provider's service


@pytest.mark.parametrize("width", [390, 1280])
def test_page_opens_in_chromium_at_phone_and_desktop_width(
    page: Path, width: int, tmp_path: Path
) -> None:
    html = page.read_text()
    assert "<script" not in html
    assert "http://" not in html and "https://" not in html
    opened = chromium.open_page(page, width=width)
    assert opened.console == []
    assert opened.requests == []
    assert "WireGuard at karachi-1" in opened.dom
    assert chromium.content_width(page, width) <= width  # nothing scrolls sideways
    png = tmp_path / f"status-{width}.png"
    chromium.screenshot(page, png, width=width, height=1500 if width > 700 else 2200)
    assert png.read_bytes().startswith(b"\x89PNG")
    if SCREENSHOTS:
        shutil.copy(png, Path(SCREENSHOTS) / png.name)


def test_the_request_check_sees_a_page_that_fetches(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/pixel.png" alt="">')
    assert chromium.open_page(leaky).requests == ["http://127.0.0.1:9/pixel.png"]


def test_the_width_check_sees_a_page_too_wide_for_a_phone(tmp_path: Path) -> None:
    wide = tmp_path / "wide.html"
    wide.write_text('<!DOCTYPE html><body><p style="width:900px">wide</p></body>')
    assert chromium.content_width(wide, 390) > 390


def test_status_pdf_has_every_row_and_the_incidents(prometheus: str, tmp_path: Path) -> None:
    out = tmp_path / "status.pdf"
    assert cli.main(["status", "--prometheus", prometheus, *ARGS, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    pages = pdf.pages_as_png(out, tmp_path / "pages")
    assert pages
    assert all(png.read_bytes().startswith(b"\x89PNG") for png in pages)
    assert pdf.inked_share(out, 1) > 0.01
    text = pdf.text(out)
    assert text.count("WireGuard") >= 2
    assert "Site offline" in text
    assert "Since 2024-03-14 14:00 PKT (3 h so far)" in text


def test_urdu_page_is_right_to_left_and_translated(prometheus: str, tmp_path: Path) -> None:
    out = tmp_path / "status-ur.html"
    argv = ["status", "--prometheus", prometheus, *ARGS, "--lang", "ur", "-o", str(out)]
    assert cli.main(argv) == 0
    html = out.read_text()
    urdu = load("ur")
    assert '<html lang="ur" dir="rtl">' in html
    assert urdu("status.title") in html
    assert urdu("state.failing") in html
    assert load("en")("status.title") not in html
    assert chromium.open_page(out).console == []


def test_summary_line_when_done(
    prometheus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "status.html"
    assert cli.main(["status", "--prometheus", prometheus, *ARGS, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"vpnwatch status: wrote {out}: 6 rows at 2 sites, now 1 failing, 5 operational;"
        " 4 incidents\n"
    )


def _on_a_terminal(argv: list[str]) -> str:
    """Run ``vpnwatch`` with stderr on a pseudo-terminal; what the terminal received."""
    primary, secondary = os.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    with subprocess.Popen(
        [sys.executable, "-m", "vpnwatch.cli", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=env,
    ) as process:
        os.close(secondary)
        received = bytearray()
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            received += chunk
        process.wait(timeout=120)
    os.close(primary)
    return received.decode("utf-8", errors="replace")


def test_progress_is_drawn_on_a_terminal_then_erased(prometheus: str, tmp_path: Path) -> None:
    out = tmp_path / "status.html"
    screen = _on_a_terminal(["status", "--prometheus", prometheus, *ARGS, "-o", str(out)])
    assert "status: reading vpnwatch_probes_total" in screen
    assert "status: finding incidents" in screen
    last = screen.replace("\r\n", "\n").rstrip("\n").rsplit("\n", 1)[-1]
    # the bar is erased (cursor up, erase line) before the summary, which is the last line
    assert last.endswith(
        f"vpnwatch status: wrote {out}: 6 rows at 2 sites, now 1 failing, 5 operational;"
        " 4 incidents"
    )
