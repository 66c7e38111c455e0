"""Part 6: the CPU a command costs from exec to exit: ``vpnwatch --help`` and ``vpnwatch check``.

Mostly imports, which every invocation pays (issue 14: goals of 0.1 s for ``--help`` and 0.3 s for
``check`` of one file, on this machine). Each command runs as a child several times; the figure is
the median of the child's user + system time, from ``getrusage(RUSAGE_CHILDREN)``.

``check`` runs twice: stopping at the handshake (``--no-tunnel``, the command the goal was set
for, before tunnel tests existed) and as it runs by default on a file with an ``Address``, with
its tunnel test. Beside them, the floor: an interpreter that imports only the standard and
third-party modules the handshake ``check`` loads (pydantic, asyncio, cryptography, …, listed by
running it once in a child) and none of vpnwatch. What ``check`` costs above it is vpnwatch's
own: its modules, the validators it builds, the probe.
"""

from __future__ import annotations

import compileall
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import vpnwatch
from benchmarks.lab import Lab
from benchmarks.measure import measured

VPNWATCH = Path(sys.executable).with_name("vpnwatch")
RUNS = 5
GOALS = {"help": 0.1, "check": 0.3}


def child_cpu(argv: list[str], runs: int = RUNS) -> dict[str, Any]:
    """Median CPU seconds of ``argv`` run ``runs`` times (after one unmeasured run)."""
    subprocess.run(argv, capture_output=True, check=False, timeout=60)  # warm the page cache
    seconds = []
    for _ in range(runs):
        with measured(resource.RUSAGE_CHILDREN) as usage:
            proc = subprocess.run(argv, capture_output=True, check=False, timeout=60)
        seconds.append(usage.cpu)
    return {
        "cpu_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "runs": runs,
        "exit_status": proc.returncode,
    }


def measure_startup(lab: Lab, runs: int = RUNS) -> dict[str, Any]:
    """``vpnwatch --help`` and ``vpnwatch check`` of one lab wg-quick file (a real handshake).

    vpnwatch's bytecode is compiled first, as pip compiles a package it installs: a checkout run
    with PYTHONDONTWRITEBYTECODE set (as CI's is) would otherwise compile every module it imports
    on every start, and the figures would be the compiler's.
    """
    compileall.compile_dir(Path(vpnwatch.__file__).parent, quiet=1)
    conf = lab.directory / "startup-wg.conf"
    conf.write_text(lab.wireguard.client_config(lab.wireguard_keys[0]))
    conf.chmod(0o600)
    handshake = ["check", "--no-tunnel", str(conf)]
    commands = {
        "vpnwatch --help": ([str(VPNWATCH), "--help"], GOALS["help"]),
        "vpnwatch check --no-tunnel ONE.conf": ([str(VPNWATCH), *handshake], GOALS["check"]),
        # The file has an Address, so check also tests the tunnel: ~100 echoes and their timers.
        "vpnwatch check ONE.conf": ([str(VPNWATCH), "check", str(conf)], None),
    }
    rows = {
        shown: child_cpu(argv, runs) | {"goal_s": goal} for shown, (argv, goal) in commands.items()
    }
    floor = [sys.executable, "-c", _IMPORT_MODULES.format(modules=modules_loaded_by(handshake))]
    rows["the handshake check's imports alone (its floor)"] = child_cpu(floor, runs) | {
        "goal_s": None
    }
    return rows


_LIST_MODULES = """
import sys
from vpnwatch.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(m for m in sys.modules if not m.startswith(("vpnwatch", "__")) and "._" not in m))
"""


# Some entries of sys.modules are aliases that cannot be imported by their name; their real
# modules are in the list too.
_IMPORT_MODULES = """
import importlib
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
"""


def modules_loaded_by(arguments: list[str]) -> list[str]:
    """The public non-vpnwatch modules a ``vpnwatch`` command has loaded when it ends."""
    done = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()[-1].split()
