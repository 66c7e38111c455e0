"""Benchmark: a report over 30 days of 200 targets scraped every 30 s, from a real Prometheus.

Goal (issue 10): under a minute on the project's 2-core machine, with bounded memory, at a 30 s
step (``--fine``): 86,401 points a series, 58 M points over the four counters.

The history (20 sites of 10 targets: 3 WireGuard, 3 OpenVPN, 2 obfs4, 2 controls; each site's
WireGuard blocked for 3 h every 5th day, one site offline for 20 min a day) is written as one
OpenMetrics file per 2-hour block, because promtool re-reads its whole input once per block it
writes, and backfilled into a TSDB that is kept in a cache directory for the next run (building
it takes a few minutes; ``--rebuild`` forces it). Then Prometheus serves it on loopback and
``vpnwatch report`` runs as a child process, timed, with its peak RSS read from the kernel.

Run: ``python benchmarks/report_bench.py [--cache DIR] [--rebuild] [--fine]``; ``--fine`` adds a
run at a 30 s step. The machine's load average is printed first: other jobs on a 2-core machine
stretch the wall-clock time, while the child's CPU time is what the report itself cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stack.promlib import backfill_file, serving_tsdb

START = 1_709_251_200  # 2024-03-01T00:00:00Z
DAYS = 30
SCRAPE = 30
BLOCK = 7200
SITES = 20
PROTOCOLS = ("wireguard",) * 3 + ("openvpn",) * 3 + ("obfs4",) * 2 + ("tcp", "dns")
LATENCY = {"wireguard": 0.04, "openvpn": 0.35, "obfs4": 0.25, "tcp": 0.02, "dns": 0.01}
SCRAPES = DAYS * 86400 // SCRAPE + 1
DONE_MARKER = "complete"
#: A report that has not finished by then is stopped: ten times the goal.
REPORT_TIMEOUT = 600


def failing(site: int, protocol: str) -> array[int]:
    """Cumulative failed probes at each scrape for a target of ``protocol`` at ``site``."""
    windows = []
    if protocol == "wireguard":  # blocked 3 h every 5th day, at an hour that depends on the site
        windows += [
            (day * 86400 + (site % 12) * 3600, 3 * 3600) for day in range(site % 5, DAYS, 5)
        ]
    if site == 7:  # offline 20 min every day at 20:00: every probe fails, controls too
        windows += [(day * 86400 + 20 * 3600, 1200) for day in range(DAYS)]
    failed_at = bytearray(SCRAPES)
    for begin, length in windows:
        first, last = begin // SCRAPE, min(SCRAPES, (begin + length) // SCRAPE)
        failed_at[first:last] = b"\x01" * (last - first)
    cumulative = array("l", bytes(8 * SCRAPES))
    running = 0
    for index, failed in enumerate(failed_at):
        running += failed
        cumulative[index] = running
    return cumulative


class History(NamedTuple):
    labels: str
    protocol: str
    failed: array[int]


def write_block(out: TextIO, first: int, last: int, histories: list[History]) -> None:
    """Scrapes ``first..last-1`` of every target as OpenMetrics, family by family."""
    scrapes = range(first, last)
    times = [START + k * SCRAPE for k in scrapes]
    out.write("# TYPE vpnwatch_probes counter\n")
    for target in histories:
        _lines(out, f"vpnwatch_probes_total{{{target.labels}}}", [k + 1 for k in scrapes], times)
    out.write("# TYPE vpnwatch_probe_failures counter\n")
    for target in histories:
        failed = [target.failed[k] for k in scrapes]
        if failed[-1]:  # the series exists from the first failure on, as prometheus_client does
            known = [i for i, count in enumerate(failed) if count]
            failure = "timeout" if target.protocol == "wireguard" else "unreachable"
            labels = f'{target.labels},failure="{failure}",stage="handshake"'
            name = f"vpnwatch_probe_failures_total{{{labels}}}"
            _lines(out, name, [failed[i] for i in known], [times[i] for i in known])
    out.write("# TYPE vpnwatch_handshake_duration_seconds histogram\n")
    for target in histories:
        successes = [k + 1 - target.failed[k] for k in scrapes]
        sums = [round(count * LATENCY[target.protocol], 6) for count in successes]
        name = "vpnwatch_handshake_duration_seconds"
        _lines(out, f"{name}_count{{{target.labels}}}", successes, times)
        _lines(out, f"{name}_sum{{{target.labels}}}", sums, times)
    out.write("# TYPE vpnwatch_target_info gauge\n")
    for target in histories:
        role = "control" if target.protocol in ("tcp", "dns") else "target"
        labels = f'{target.labels},endpoint="x.invalid:1",transport="udp",role="{role}"'
        _lines(out, f"vpnwatch_target_info{{{labels}}}", [1], times[:1])
    out.write("# EOF\n")


def _lines(out: TextIO, name: str, values: Sequence[float], times: Sequence[int]) -> None:
    out.writelines(f"{name} {value} {t}\n" for value, t in zip(values, times, strict=True))


def build_tsdb(tsdb: Path) -> None:
    histories: list[History] = []
    for site in range(SITES):
        for number, protocol in enumerate(PROTOCOLS):
            labels = f'site="site-{site:02d}",target="t{site:02d}-{number}",protocol="{protocol}"'
            histories.append(History(labels, protocol, failing(site, protocol)))
    blocks = range(0, SCRAPES - 1, BLOCK // SCRAPE)
    with tempfile.TemporaryDirectory(prefix="vpnwatch-bench-") as scratch:

        def one(first: int) -> None:
            path = Path(scratch) / f"{first}.om"
            with path.open("w") as out:
                write_block(out, first, min(SCRAPES, first + BLOCK // SCRAPE), histories)
            backfill_file(path, tsdb)
            path.unlink()

        with ThreadPoolExecutor(max_workers=2) as pool:  # promtool runs in parallel with writing
            list(pool.map(one, blocks))
    (tsdb / DONE_MARKER).write_text("ok\n")


def run_report(url: str, out: Path, *extra: str) -> tuple[float, float, float]:
    """Wall-clock seconds, CPU seconds and peak MiB of one ``vpnwatch report`` child process."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "vpnwatch.report.cli", "--prometheus", url,
         "--from", "2024-03-01T00:00:00Z", "--to", "2024-03-31T00:00:00Z",
         "--tz", "Asia/Karachi", "-o", str(out), *extra],
    )  # fmt: skip
    deadline = started + REPORT_TIMEOUT
    while True:  # wait4 gives the child's rusage, but no timeout: poll it until the deadline
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            child.kill()
            child.wait(timeout=30)
            raise SystemExit(f"the report did not finish within {REPORT_TIMEOUT} s")
        time.sleep(0.1)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if child.returncode != 0:
        raise SystemExit(f"the report failed with status {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "vpnwatch-report-bench"
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--fine", action="store_true", help="also run at a 30 s step")
    args = parser.parse_args()

    tsdb = args.cache / "tsdb"
    if args.rebuild or not (tsdb / DONE_MARKER).exists():
        shutil.rmtree(tsdb, ignore_errors=True)
        started = time.monotonic()
        build_tsdb(tsdb)
        print(f"built the TSDB in {time.monotonic() - started:.0f} s (cached in {tsdb})")
    samples = SITES * len(PROTOCOLS) * SCRAPES
    print(f"history: {SITES * len(PROTOCOLS)} targets x {DAYS} days at {SCRAPE} s = "
          f"{samples / 1e6:.1f} M scrapes per metric")  # fmt: skip

    print("load average before the runs: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with serving_tsdb(tsdb, args.cache) as url:
        runs = [("auto step (5m)", ())] + ([("30 s step", ("--step", "30s"))] if args.fine else [])
        for label, extra in runs:
            for fmt in ("json", "html"):
                out = args.cache / f"report.{fmt}"
                seconds, cpu, mib = run_report(url, out, *extra)
                print(f"report, {label}, {fmt}: {seconds:.1f} s ({cpu:.1f} s CPU), "
                      f"peak RSS {mib:.0f} MiB, {out.stat().st_size / 1024:.0f} KiB")  # fmt: skip


if __name__ == "__main__":
    main()
