"""The systemd timer and service that regenerate the status page: valid, and a real command."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from tests.stack.promlib import REPO
from vpnwatch import cli
from vpnwatch.status.cli import run_status

UNITS = REPO / "deploy" / "status"
INSTALLED = "/usr/local/bin/vpnwatch"


def _exec_start(service: str) -> list[str]:
    joined = service.replace("\\\n", " ")
    line = next(line for line in joined.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_service_runs_vpnwatch_status_with_options_it_has() -> None:
    command = _exec_start((UNITS / "vpnwatch-status.service").read_text())
    assert command[0] == INSTALLED
    args = cli._parser().parse_args(command[1:])
    assert args.func is run_status
    assert str(args.output).startswith("/var/www/vpnwatch-status/")


def test_systemd_accepts_the_timer_and_the_service(tmp_path: Path) -> None:
    vpnwatch = Path(sys.executable).parent / "vpnwatch"  # verify wants ExecStart to exist
    for unit in ("vpnwatch-status.service", "vpnwatch-status.timer"):
        text = (UNITS / unit).read_text().replace(INSTALLED, str(vpnwatch))
        (tmp_path / unit).write_text(text)
    done = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            *(str(tmp_path / u) for u in sorted(p.name for p in UNITS.iterdir())),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")
