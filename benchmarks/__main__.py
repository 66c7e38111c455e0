"""``python -m benchmarks``: every benchmark, one markdown report, and the figures as JSON.

The parts share one lab (WireGuard, OpenVPN and obfs4 servers in a namespace) and run one after
another, never at once, so that none measures another's load: CPU per probe (1), the real clients
side by side (2), latency accuracy (4), the monitor as users run it, ``vpnwatch run`` scraped over
HTTP (5), the commands' start-up CPU (6), then scale in a process of its own (3), then the report
benchmark if it is there. Needs root. ``--quick`` shrinks everything, to check that it runs; the
exit status is 1 when a guard of part 5 fails (a ratio measured within one run, which a slow or
loaded machine does not move: see benchmarks/monitor_job.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import table
from benchmarks.accuracy import measure_accuracy
from benchmarks.clients import compare_clients
from benchmarks.cost import measure_costs
from benchmarks.lab import Lab, running_lab
from benchmarks.monitor_job import measure as measure_monitor
from benchmarks.startup import measure_startup

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPORT_BENCH = HERE / "report_bench.py"
#: WireGuard peers: enough that no key of a batch waits for its 20 ms turn, and the 1,000 targets
#: of part 5's fleet (which registers more for its scale search).
BATCH_PEERS = 1000
#: OpenVPN 2.6 answers at most 100 new UDP sessions per 10 s; part 2 waits that window out.
CONNECT_FREQ_WINDOW = 10.0
#: Scale runs as (targets, interval, duration): 10,000 targets at 3 and 10 times the rate of 60 s.
SCALE_RUNS = ((10_000, 20.0, 60.0), (10_000, 6.0, 30.0))
QUICK_SCALE_RUNS = ((1_000, 2.0, 6.0),)
_CHILD_TIMEOUT = 300


def machine() -> dict[str, Any]:
    """What the figures came from, as docs/benchmarks.md quotes it."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_kib = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "ram": f"{ram_kib / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openvpn": _first_line(["openvpn", "--version"]).split(" [")[0],
        "wireguard-go": _first_line(["wireguard-go", "--version"]),
        "obfs4proxy": _first_line(["obfs4proxy", "-version"]),
        "load average at start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def _first_line(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else ""


async def in_lab(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    scale = 0.1 if args.quick else 1.0
    profile_dir = RESULTS if args.profile else None
    results: dict[str, Any] = {}
    results["cost"] = await measure_costs(lab, scale=scale, profile_dir=profile_dir)
    await asyncio.sleep(CONNECT_FREQ_WINDOW)
    results["clients"] = await compare_clients(lab, checks=2 if args.quick else 5)
    results["accuracy"] = await measure_accuracy(lab, seconds=6 if args.quick else 20)
    return results


def scale_runs(quick: bool) -> list[dict[str, Any]]:
    runs = []
    for targets, interval, duration in QUICK_SCALE_RUNS if quick else SCALE_RUNS:
        argv = [sys.executable, "-m", "benchmarks.scale", "--targets", str(targets)]
        argv += ["--interval", str(interval), "--duration", str(duration)]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            timeout=_CHILD_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"the scale run failed: {proc.stderr.strip()[-2000:]}")
        runs.append(json.loads(proc.stdout))
    return runs


def report_bench() -> str | None:
    """benchmarks/report_bench.py's own lines, when it exists (another engineer's benchmark)."""
    if not REPORT_BENCH.exists():
        return None
    try:
        proc = subprocess.run(
            [sys.executable, str(REPORT_BENCH)],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            timeout=_CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"report_bench.py did not finish within {_CHILD_TIMEOUT} s"
    output = proc.stdout.strip() or proc.stderr.strip()[-2000:]
    return "```\n" + output + f"\n(exit status {proc.returncode})\n```"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small batches, no report benchmark: check that it runs and that the guards hold",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile part 1's batches into results/ (it slows them: quote figures from a run "
        "without it)",
    )
    parser.add_argument("--no-report-bench", action="store_true", help="skip report_bench.py")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the benchmarks build network namespaces: run them as root")
    # The monitor logs each target's changes of state; hundreds of load targets would flood.
    logging.getLogger("vpnwatch").setLevel(logging.ERROR)
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine()}
    with running_lab(wireguard_peers=BATCH_PEERS) as lab:
        results.update(asyncio.run(in_lab(lab, args)))
        results["monitor"] = measure_monitor(lab, results["cost"], quick=args.quick)
        results["startup"] = measure_startup(lab, runs=3 if args.quick else 5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")  # kept if a later part fails
    try:
        results["scale"] = scale_runs(args.quick)
    except RuntimeError as exc:  # reported with the rest, not lost with it
        results["scale_failed"] = str(exc)[-1500:]
    # The report benchmark builds a TSDB of 90 days first: not a quick run's business.
    if not (args.quick or args.no_report_bench) and (report := report_bench()) is not None:
        results["report"] = report
    results["seconds"] = round(time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table.render(results))
    print(f"{results['seconds']} s in all; figures in {args.out}")
    failed = [guard["guard"] for guard in results["monitor"]["guards"] if not guard["passed"]]
    if failed:
        print(f"guard failed: {'; '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
