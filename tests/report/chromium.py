"""Headless Chromium (the Debian package) for opening reports as a reader would.

Chromium logs every console message, script error and failed resource load as a ``:CONSOLE``
line on stderr when started with ``--enable-logging=stderr``.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]


def _run(html: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="vpnwatch-chromium-") as profile:
        return subprocess.run(
            ["chromium", *FLAGS, f"--user-data-dir={profile}", *extra, html.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def open_page(html: Path) -> Page:
    """The DOM after loading, and every console line the page produced."""
    done = _run(html, "--enable-logging=stderr", "--v=0", "--dump-dom")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Page(done.stdout, console)


def screenshot(html: Path, png: Path, *, width: int = 1100, height: int = 2400) -> None:
    _run(html, f"--window-size={width},{height}", f"--screenshot={png.resolve()}")
