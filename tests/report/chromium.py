"""Headless Chromium (the Debian package) for opening pages as a reader would.

Chromium logs every console message, script error and failed resource load as a ``:CONSOLE``
line on stderr when started with ``--enable-logging=stderr``. Its net log records every
request; the page's own carry the ``file://`` network isolation key, so the browser's own
background requests (which the flags also stop resolving) are told apart from the page's.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from html import escape
from pathlib import Path

from vpnwatch.report.browser import FLAGS, sandbox_flags

#: Measures the page in the iframe once it has loaded; the page itself has no script.
_MEASURE = (
    "<script>onload = () => { document.title ="
    " document.getElementById('page').contentDocument.documentElement.scrollWidth }</script>"
)


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]
    #: every URL the page asked for, beyond its own file
    requests: list[str]


def _run(html: Path, *extra: str, netlog: Path | None = None) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="vpnwatch-chromium-") as profile:
        logging = [f"--log-net-log={netlog}"] if netlog else []
        return subprocess.run(
            [
                "chromium",
                *FLAGS,
                *sandbox_flags(),
                f"--user-data-dir={profile}",
                *logging,
                *extra,
                html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def open_page(html: Path, *, width: int = 1100) -> Page:
    """The DOM after loading, every console line the page produced and every request it made."""
    with tempfile.TemporaryDirectory(prefix="vpnwatch-netlog-") as work:
        netlog = Path(work) / "netlog.json"
        done = _run(
            html,
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={width},900",
            "--dump-dom",
            netlog=netlog,
        )
        requests = page_requests(json.loads(netlog.read_text()))
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Page(done.stdout, console, requests)


def page_requests(netlog: dict[str, object]) -> list[str]:
    """URLs of the requests a ``file://`` page started, from a Chromium net log."""
    constants = netlog["constants"]
    assert isinstance(constants, dict)
    start_job = constants["logEventTypes"]["URL_REQUEST_START_JOB"]
    events = netlog["events"]
    assert isinstance(events, list)
    return [
        event["params"]["url"]
        for event in events
        if event.get("type") == start_job
        and "file://" in event.get("params", {}).get("network_isolation_key", "")
        and not event["params"]["url"].startswith("file:")
    ]


def content_width(html: Path, width: int) -> int:
    """How wide the page lays out in a viewport ``width`` pixels wide (wider: it scrolls sideways).

    Headless windows are at least 500 pixels wide, so the page is laid out in an iframe of
    ``width`` inside a test page whose one-line script measures it; the page itself runs none.
    """
    with tempfile.TemporaryDirectory(prefix="vpnwatch-measure-") as work:
        harness = Path(work) / "measure.html"
        page = escape(html.read_text(encoding="utf-8"), quote=True)
        harness.write_text(
            f'<!DOCTYPE html><iframe id="page" width="{width}" height="900" srcdoc="{page}">'
            f"</iframe>{_MEASURE}",
            encoding="utf-8",
        )
        dom = _run(harness, "--window-size=1400,1000", "--dump-dom").stdout
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    return int(title)


def screenshot(html: Path, png: Path, *, width: int = 1100, height: int = 2400) -> None:
    _run(html, f"--window-size={width},{height}", f"--screenshot={png.resolve()}")
