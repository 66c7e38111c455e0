"""Headless Chromium (Debian's ``chromium``) turning the HTML a command wrote into a PDF.

A PDF is what gets attached to a letter to a regulator, and printing the very HTML the command
wrote keeps the two from ever telling different stories. The page is printed from a private,
throw-away profile; the pages themselves forbid every script and fetch (their
Content-Security-Policy), so printing reads nothing but the one file. (Chromium's own switch
for scripts, ``--blink-settings=scriptEnabled=false``, stops print-to-pdf from writing at all.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from vpnwatch.errors import ConfigError

#: Candidates in the order they are looked for on PATH.
BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    # Chromium asks Google for the time and for updates on its own; no name resolves for it here
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
#: Seconds a print may take; a long report prints in a few.
PRINT_TIMEOUT = 300


def find_browser() -> str:
    """The path of a headless-capable Chromium, or a ConfigError saying how to get one."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("PDF output needs Chromium: install Debian's chromium package")


def sandbox_flags() -> tuple[str, ...]:
    """Chromium refuses to start its sandbox as root; elsewhere the sandbox stays on."""
    return ("--no-sandbox",) if os.geteuid() == 0 else ()


def print_pdf(html: str, output: Path) -> None:
    """Write ``html`` (a self-contained page) to ``output`` as a PDF, A4 or Letter as the
    browser's locale has it, without the browser's own header and footer."""
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="vpnwatch-pdf-") as work:
        page = Path(work) / "page.html"
        page.write_text(html, encoding="utf-8")
        printed = Path(work) / "page.pdf"
        try:
            done = subprocess.run(
                [
                    browser,
                    *FLAGS,
                    *sandbox_flags(),
                    f"--user-data-dir={Path(work) / 'profile'}",
                    "--no-pdf-header-footer",
                    f"--print-to-pdf={printed}",
                    page.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=PRINT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"Chromium did not print within {PRINT_TIMEOUT} s", source=output
            ) from None
        if done.returncode != 0 or not printed.is_file():
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise ConfigError(f"Chromium could not print the PDF: {last}", source=output)
        try:
            shutil.copyfile(printed, output)
        except OSError as exc:
            raise ConfigError(f"cannot write: {exc.strerror}", source=output) from None
