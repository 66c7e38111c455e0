"""Part 5: what a verified probe costs inside ``vpnwatch run``, as users run it, at fleet scale.

Each run starts ``vpnwatch run --config FLEET.yml --listen 127.0.0.1:PORT`` as a child process,
with its scheduler, metrics, verdicts and HTTP server as shipped, on a YAML configuration of lab
targets, and scrapes ``/metrics`` every 5 s as Prometheus would. After a warm-up (one interval, so
every target's random first offset has passed) it takes a window and computes, from the scrapes:

* CPU per probe: Δ ``process_cpu_seconds_total`` ÷ Δ sum(``vpnwatch_probes_total``);
* RSS per target: ``process_resident_memory_bytes`` ÷ targets;
* schedule lateness p50/p99 from the ``vpnwatch_schedule_lateness_seconds`` buckets of the window
  (interpolated as PromQL's ``histogram_quantile``), and the exact share within 100 ms (a bucket
  bound);
* outcomes: every probe must be ok; failures and local errors are counted and the run is marked.

Beside it, in the same run: the same probes in-process through ``PROBES[...]`` in batches, with
no monitor (:mod:`benchmarks.cost`), and each protocol's cryptographic floor
(:mod:`benchmarks.floors`); for WireGuard also its probes alone at the fleet's rate, started in
the groups the scheduler starts them in (:func:`paced`), so that what the pace costs and what the
monitor's own code costs are numbers apart.

Scale. One process, verified WireGuard handshakes. Time is compressed: T targets at interval I
make the same probe rate as T·60/I targets at 60 s, and the scheduler's lateness depends on that
rate (and on the CPU left), so a fleet "equivalent to E targets at 60 s" is T real targets at
I = T·60/E. What does not scale with the rate is not reproduced: memory (measured apart, at 10,000
and 50,000 real targets), the size of each scrape (it grows with targets, not rate), and the number
of timers the event loop holds. The search stops at the first fleet whose p99 lateness reaches
100 ms or whose probes fail; then the same configuration runs split over two processes with
``--shard 1/2`` and ``--shard 2/2``.

``python -m benchmarks.monitor_job`` runs this part alone, in a lab of its own (root needed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import table
from benchmarks.cost import measure_costs, run_paced
from benchmarks.lab import Lab, running_lab
from benchmarks.measure import memory_kib, process_cpu
from benchmarks.more_fleets import more_fleets
from benchmarks.scrape import Scrape, Window, scrape
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair
from vpnwatch.scheduler import TICK_BATCH

VPNWATCH = Path(sys.executable).with_name("vpnwatch")
SCRAPE_EVERY = 5.0
#: Seconds to wait for a monitor's HTTP server (50,000 targets take a while to load).
START_SECONDS = 180.0
#: The CI guards, ratios of two figures of the same run, so that a slow machine moves both sides.
#: The monitor's own overhead: its CPU per verified WireGuard probe over the same probes' run
#: alone at its pace (:func:`paced`; 23 % in the quick run, 10 % of it without scrapes). When every
#: scrape rebuilt the whole exposition, scrapes alone added more than a probe's CPU to each probe.
#: Not over the probe-only batch: that one keeps 32 probes in flight back to back, and the pace
#: alone costs a third more (a fleet's probes come in groups, each to a cold process).
GUARD_MONITOR_OVER_PACED_PCT = 60
#: The probe itself: the probe-only batch over the X25519 floor (1.7-2.4x since the batch warms
#: every key; 2.9-3.0x before, when a third of its probes did the static-key work). Issue
#: 21's goal for the monitor is 2x the floor, not met yet; the floor alone swings by a third
#: between runs on a shared VM, so a guard on it would fail on noise.
GUARD_PROBE_ONLY_X_FLOOR = 5.0
LATENESS_GOAL = 0.1
#: Verified WireGuard targets (each with its own registered key) for the scale search.
SCALE_TARGETS = 2000
#: Fleets searched, as targets at 60 s; stop at the first that misses the goal.
SCALE_EQUIVALENTS = (2_500, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000)
MEMORY_TARGETS = (10_000, 50_000)
MEMORY_INTERVAL = 30.0
FIRST_CLOSED_PORT = 10000
#: Linux answers at most 1,000 ICMP errors a second per namespace; real endpoints each have theirs.
ICMP_BUDGET = ("net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=100000")


@dataclass(frozen=True)
class Fleet:
    """A configuration for ``vpnwatch run``: its targets (inline, or files it includes)."""

    name: str
    entries: list[dict[str, Any]]
    interval: float
    timeout: float
    kind: str = "verified handshakes"
    #: wg-quick files, one per target, for fleets whose inline entries would pass the 1 MiB a
    #: configuration file may hold (about 5,000 WireGuard targets), as a large fleet is kept.
    files: tuple[tuple[str, str], ...] = ()

    @property
    def targets(self) -> int:
        return len(self.entries) + len(self.files)

    @property
    def rate(self) -> float:
        return self.targets / self.interval

    def write(self, path: Path) -> Path:
        document: dict[str, Any] = {
            "settings": {"interval": self.interval, "timeout": self.timeout},
            "targets": self.entries,
        }
        if self.files:
            directory = path.with_suffix(".d")
            directory.mkdir(mode=0o700)
            for name, text in self.files:
                (directory / f"{name}.conf").write_text(text)
            document["include"] = [f"{directory}/*.conf"]
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)  # private keys inline
        return path


@dataclass(frozen=True)
class Plan:
    """How long to watch each run, and how big the protocol fleets are."""

    window: float
    #: protocol → (targets, interval): rates the lab servers answer (OpenVPN 2.6 takes at most 100
    #: new sessions per 10 s; at 8 a second some were already left unanswered, so 5).
    fleets: dict[str, tuple[int, float]] = field(default_factory=dict)
    scale: bool = True
    #: Probes in each probe-only batch of the protocols :mod:`benchmarks.more_fleets` measures.
    more_batch: int = 300


FULL = Plan(
    window=20.0,
    fleets={
        "wireguard": (1000, 10.0),
        "openvpn": (25, 5.0),
        "obfs4": (100, 2.0),
        "ikev2": (20, 2.0),
        "anyconnect": (10, 2.0),
        "shadowsocks": (50, 1.0),
        "trojan": (50, 1.0),
    },
)
QUICK = Plan(
    window=10.0,
    fleets={
        "wireguard": (500, 5.0),
        "openvpn": (10, 2.0),
        "obfs4": (50, 1.0),
        "ikev2": (10, 2.0),
        "anyconnect": (5, 2.0),
        "shadowsocks": (20, 1.0),
        "trojan": (20, 1.0),
    },
    scale=False,
    more_batch=64,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Running:
    """A running monitor: where its /metrics is, and its process id (for its CPU per scrape)."""

    port: int
    pid: int


@contextlib.contextmanager
def monitor_process(config: Path, shard: str | None = None) -> Iterator[Running]:
    """``vpnwatch run`` on ``config`` until the block ends."""
    port = _free_port()
    argv = [str(VPNWATCH), "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    argv += ["--log-level", "error", *(["--shard", shard] if shard else [])]
    stderr = config.with_suffix(f".{port}.log")
    with stderr.open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        _wait_until_serving(process, port, stderr)
        yield Running(port, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text()[-2000:]
            raise RuntimeError(f"vpnwatch run exited {process.returncode}: {said}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2),
        ):
            return
        time.sleep(0.2)
    raise RuntimeError(f"vpnwatch run did not serve within {START_SECONDS:g} s")


def watch(monitors: Sequence[Running], warm_up: float, window: float) -> list[Window]:
    """Scrape every monitor every 5 s; each one's window after the warm-up."""
    began = time.monotonic()
    while time.monotonic() - began < warm_up:
        for monitor in monitors:
            scrape(monitor.port, monitor.pid)
        time.sleep(min(SCRAPE_EVERY, max(0.0, warm_up - (time.monotonic() - began))))
    firsts = [scrape(monitor.port, monitor.pid) for monitor in monitors]
    scrapes: list[list[Scrape]] = [[] for _ in monitors]
    ends = time.monotonic() + window
    while (left := ends - time.monotonic()) > 0:
        time.sleep(min(SCRAPE_EVERY, left))
        for mine, monitor in zip(scrapes, monitors, strict=True):
            mine.append(scrape(monitor.port, monitor.pid))
    return [
        Window(first, mine[-1], tuple(mine)) for first, mine in zip(firsts, scrapes, strict=True)
    ]


def run_fleet(fleet: Fleet, directory: Path, window: float, shards: int = 1) -> dict[str, Any]:
    """Run ``fleet`` in ``shards`` processes and report the window, summed over them."""
    config = fleet.write(directory / f"{fleet.name}.yml")
    warm_up = fleet.interval + SCRAPE_EVERY
    with contextlib.ExitStack() as stack:
        monitors = [
            stack.enter_context(
                monitor_process(config, f"{index}/{shards}" if shards > 1 else None)
            )
            for index in range(1, shards + 1)
        ]
        started = time.monotonic()
        windows = watch(monitors, warm_up, window)
        loaded = time.monotonic() - started
    return summarize(fleet, windows, shards) | {"watched_seconds": round(loaded)}


def _sum(scrapes: Sequence[Scrape]) -> Scrape:
    lateness: Counter[float] = Counter()
    failures: Counter[str] = Counter()
    for one in scrapes:
        lateness.update(one.lateness)
        failures.update(one.failures)
    return Scrape(
        at=sum(one.at for one in scrapes) / len(scrapes),
        cpu_seconds=sum(one.cpu_seconds for one in scrapes),
        rss_bytes=sum(one.rss_bytes for one in scrapes),
        probes=sum(one.probes for one in scrapes),
        failures=failures,
        errors=sum(one.errors for one in scrapes),
        lateness=dict(lateness),
        bytes_scraped=sum(one.bytes_scraped for one in scrapes),
    )


def summarize(fleet: Fleet, windows: Sequence[Window], shards: int = 1) -> dict[str, Any]:
    """The window's figures, over every process that ran ``fleet``."""
    total = Window(_sum([one.first for one in windows]), _sum([one.last for one in windows]))
    scrapes = [scrape for one in windows for scrape in one.scrapes]
    scrape_cpu = sum(one.scrape_cpu for one in windows)
    targets = fleet.targets
    failures, errors = total.failures, total.errors
    return {
        "fleet": fleet.name,
        "kind": fleet.kind,
        "targets": targets,
        "interval": fleet.interval,
        "equivalent_at_60s": round(fleet.rate * 60),
        "processes": shards,
        "window_seconds": round(total.seconds, 1),
        "probes": total.probes,
        "probes_expected": round(fleet.rate * total.seconds),
        "ok": total.probes - sum(failures.values()),
        "failures": failures,
        "local_errors": errors,
        "status": "ok" if not failures and not errors and total.probes else "FAILURES",
        "cpu_per_probe_us": _round(total.cpu_per_probe * 1e6),
        "cpu_share": round(total.cpu_seconds / total.seconds, 3),
        "rss_mib": round(total.last.rss_bytes / 2**20, 1),
        "rss_per_target_kib": round(total.last.rss_bytes / targets / 1024, 1),
        "lateness_ms": {
            "p50": _round(total.lateness_quantile(0.5) * 1e3, 1),
            "p99": _round(total.lateness_quantile(0.99) * 1e3, 1),
            "within_100ms": _round(total.lateness_within(LATENESS_GOAL), 4),
        },
        "scrape_kib": round(total.last.bytes_scraped / 1024),
        "scrape_cpu_ms": round(scrape_cpu / len(scrapes) * 1e3, 1),
        "scrape_wall_ms_max": round(max(one.scrape_wall for one in scrapes) * 1e3, 1),
        "cpu_per_probe_without_scrapes_us": _round(
            (total.cpu_seconds - scrape_cpu) / total.probes * 1e6 if total.probes else math.nan
        ),
    }


def _round(value: float, digits: int = 0) -> float | None:
    if math.isnan(value):
        return None
    return round(value, digits) if digits else round(value)


def holds(row: dict[str, Any]) -> bool:
    """p99 lateness below 100 ms (exactly: 99 % of starts in the ≤ 100 ms bucket), all ok."""
    within = row["lateness_ms"]["within_100ms"]
    return row["status"] == "ok" and within is not None and within >= 0.99


# --- the fleets ---


def wireguard_fleet(lab: Lab, count: int, interval: float, name: str = "wireguard") -> Fleet:
    """``count`` targets, one registered client key each, on the lab's wireguard-go."""
    keys = lab.wireguard_keys_at_least(count)
    server = lab.wireguard
    entries = [
        {
            "name": f"wg-{index}",
            "protocol": "wireguard",
            "host": lab.namespace.ip,
            "port": server.port,
            "private_key": key.private_b64,
            "public_key": server.keys.public_b64,
        }
        for index, key in enumerate(keys[:count])
    ]
    return Fleet(name, entries, interval, min(5.0, interval))


def file_fleet(name: str, path: Path, count: int, interval: float) -> Fleet:
    """``count`` targets imported from one provider file, under names of their own."""
    entries = [{"from": str(path), "name": f"{name}-{index}"} for index in range(count)]
    return Fleet(name, entries, interval, min(5.0, interval))


def closed_port_fleet(host: str, count: int, interval: float) -> Fleet:
    """WireGuard targets on closed ports (each probe ends ``refused``), as wg-quick files."""
    monitor_key = KeyPair.generate()
    server_keys = [KeyPair.generate().public_b64 for _ in range(64)]
    files = tuple(
        (
            f"closed-{index}",
            f"[Interface]\nPrivateKey = {monitor_key.private_b64}\n\n[Peer]\n"
            f"PublicKey = {server_keys[index % len(server_keys)]}\nAllowedIPs = 10.0.0.1/32\n"
            f"Endpoint = {host}:{FIRST_CLOSED_PORT + index % 50_000}\n",
        )
        for index in range(count)
    )
    return Fleet(f"closed-{count}", [], interval, 5.0, "closed ports (refused)", files)


def protocol_fleets(lab: Lab, plan: Plan) -> list[Fleet]:
    wg_count, wg_interval = plan.fleets["wireguard"]
    fleets = [wireguard_fleet(lab, wg_count, wg_interval)]
    ovpn_count, ovpn_interval = plan.fleets["openvpn"]
    for variant in lab.openvpn.servers:
        name = f"openvpn {variant}"
        fleets.append(file_fleet(name, lab.ovpn(variant), ovpn_count, ovpn_interval))
    obfs4_count, obfs4_interval = plan.fleets["obfs4"]
    lab.obfs4_target()  # writes bridge.txt
    fleets.append(file_fleet("obfs4", lab.directory / "bridge.txt", obfs4_count, obfs4_interval))
    return fleets


# --- the report ---


def compare(row: dict[str, Any], probe_only: dict[str, Any] | None) -> dict[str, Any]:
    """The monitor's figure beside the probe-only batch and the floor of the same run."""
    if probe_only is None or row["cpu_per_probe_us"] is None:
        return row
    monitor = row["cpu_per_probe_us"]
    return row | {
        "probe_only_us": probe_only["cpu_per_probe_us"],
        "floor_us": probe_only["floor_us"],
        "floor_is": probe_only["floor_is"],
        "x_floor": round(monitor / probe_only["floor_us"], 2),
        "overhead_over_probe_only_pct": round((monitor / probe_only["cpu_per_probe_us"] - 1) * 100),
    }


def paced(lab: Lab, fleet: Fleet, row: dict[str, Any], window: float) -> dict[str, Any]:
    """The fleet's probes alone, at its rate and started as the scheduler groups them.

    The probe-only batch keeps 32 probes in flight back to back; a monitor's probes come in groups
    spread over time, each finding the process's caches cold. This run is between the two: what
    the pace costs, so that the monitor's own code (scheduler, metrics, verdicts, HTTP) is the rest.
    """
    batch = asyncio.run(
        run_paced(f"{fleet.name} paced", lab.wireguard_targets(), fleet.rate, window, TICK_BATCH)
    )
    figure = batch.cpu_per_probe * 1e6
    return {
        "paced_probes": batch.probes,
        "paced_ok": batch.ok,
        "paced_group": TICK_BATCH,
        "paced_probe_only_us": round(figure),
        "overhead_over_paced_pct": round((row["cpu_per_probe_us"] / figure - 1) * 100),
        "overhead_without_scrapes_over_paced_pct": round(
            (row["cpu_per_probe_without_scrapes_us"] / figure - 1) * 100
        ),
    }


def guards(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The ratios CI asserts: ones a loaded machine cannot push past their bound."""
    wireguard = rows.get("wireguard", {})
    overhead = wireguard.get("overhead_over_paced_pct")
    probe_only, floor = wireguard.get("probe_only_us"), wireguard.get("floor_us")
    probe_x_floor = round(probe_only / floor, 2) if probe_only and floor else None
    return [
        {
            "guard": "WireGuard: the monitor's CPU per probe over the same probes alone at its "
            f"pace ≤ {GUARD_MONITOR_OVER_PACED_PCT} %",
            "value": overhead,
            "passed": overhead is not None and overhead <= GUARD_MONITOR_OVER_PACED_PCT,
        },
        {
            "guard": f"WireGuard: the probe-only batch ≤ {GUARD_PROBE_ONLY_X_FLOOR:g}x its floor",
            "value": probe_x_floor,
            "passed": probe_x_floor is not None and probe_x_floor <= GUARD_PROBE_ONLY_X_FLOOR,
        },
    ]


def scale_search(lab: Lab, directory: Path, window: float) -> dict[str, Any]:
    """The largest fleet at 60 s one process holds; then the next one over two shards."""
    runs = []
    beyond = SCALE_EQUIVALENTS[-1]
    for equivalent in SCALE_EQUIVALENTS:
        interval = SCALE_TARGETS * 60 / equivalent
        fleet = wireguard_fleet(lab, SCALE_TARGETS, interval, name=f"scale-{equivalent}")
        row = run_fleet(fleet, directory, window)
        runs.append(row | {"holds": holds(row)})
        if not runs[-1]["holds"]:
            beyond = equivalent
            break
    held = [run for run in runs if run["holds"]]
    shard_fleet = wireguard_fleet(
        lab, SCALE_TARGETS, SCALE_TARGETS * 60 / beyond, name=f"shard-{beyond}"
    )
    sharded = run_fleet(shard_fleet, directory, window, shards=2)
    return {
        "runs": runs,
        "largest_held_at_60s": held[-1]["equivalent_at_60s"] if held else None,
        "sharded": sharded | {"holds": holds(sharded)},
    }


def memory_runs(directory: Path) -> list[dict[str, Any]]:
    """RSS at 10,000 and 50,000 targets: closed ports in a namespace of their own (no servers).

    Read from ``/proc/PID/status`` (the same figure as ``process_resident_memory_bytes``), not by
    scraping: a scrape of 50,000 targets takes the monitor minutes and its text would be the peak.
    """
    rows = []
    with Namespace() as namespace:
        namespace.exec(["sysctl", "-qw", *ICMP_BUDGET])
        for count in MEMORY_TARGETS:
            fleet = closed_port_fleet(namespace.ip, count, MEMORY_INTERVAL)
            config = fleet.write(directory / f"{fleet.name}.yml")
            began = time.monotonic()
            with monitor_process(config) as monitor:
                serving = time.monotonic() - began
                time.sleep(fleet.interval + SCRAPE_EVERY)  # every target has probed once
                rss = memory_kib("VmRSS", monitor.pid)
                peak = memory_kib("VmHWM", monitor.pid)
                cpu = process_cpu(monitor.pid)
            row: dict[str, Any] = {
                "fleet": fleet.name,
                "kind": fleet.kind,
                "targets": count,
                "interval": fleet.interval,
                "seconds_to_serve": round(serving, 1),
                "rss_mib": round(rss / 1024, 1),
                "rss_peak_mib": round(peak / 1024, 1),
                "rss_per_target_kib": round(rss / count, 1),
                "cpu_seconds_total": round(cpu, 1),
            }
            rows.append(row)
    if len(rows) == 2:
        small, large = rows
        grown = (large["rss_mib"] - small["rss_mib"]) * 1024
        large["marginal_kib_per_target"] = round(grown / (large["targets"] - small["targets"]), 1)
    return rows


def measure(lab: Lab, probe_only: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    """Every in-monitor figure; ``probe_only`` is :func:`benchmarks.cost.measure_costs`' rows."""
    plan = QUICK if quick else FULL
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vpnwatch-monitor-job-") as workdir:
        directory = Path(workdir)
        fleets = protocol_fleets(lab, plan)
        rows = {
            fleet.name: compare(
                run_fleet(fleet, directory, plan.window), probe_only.get(fleet.name)
            )
            for fleet in fleets
        }
        rows["wireguard"] |= paced(lab, fleets[0], rows["wireguard"], plan.window)
        counts = {name: count for name, (count, _) in plan.fleets.items()}
        with more_fleets(counts, plan.more_batch, directory) as more:
            for one in more:
                interval = plan.fleets[one.protocol][1]
                fleet = Fleet(one.name, one.entries, interval, min(5.0, interval))
                rows[one.name] = compare(run_fleet(fleet, directory, plan.window), one.probe_only)
        results: dict[str, Any] = {"protocols": rows, "guards": guards(rows)}
        if plan.scale:
            results["scale"] = scale_search(lab, directory, plan.window)
            results["memory"] = memory_runs(directory)
    results["seconds"] = round(time.monotonic() - began)
    results["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.monitor_job", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="the protocol runs only, short")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab builds network namespaces: run as root")
    logging.getLogger("vpnwatch").setLevel(logging.ERROR)
    with running_lab(wireguard_peers=FULL.fleets["wireguard"][0]) as lab:
        probe_only = asyncio.run(measure_costs(lab, scale=0.3, profile_dir=None))
        results = measure(lab, probe_only, quick=args.quick)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table.monitor(results))
    sys.exit(0 if all(guard["passed"] for guard in results["guards"]) else 1)


if __name__ == "__main__":
    main()
