"""Part 3: the monitor with 10,000 targets: CPU share, peak memory, schedule lateness.

Run as its own process (``python -m benchmarks.scale``, JSON on stdout), so that its peak RSS is
the monitor's alone. It builds a lab namespace with no servers in it: every target is a closed port
there, which answers at once (ICMP port unreachable for UDP, a RST for TCP), so every probe ends
``refused`` after doing its first step for real: a WireGuard initiation computed and sent, an
OpenVPN hard reset wrapped with tls-auth, a TCP connection attempt for obfs4. A successful
handshake costs more; part 1 measures that.

The fleet is 6,000 WireGuard, 2,000 OpenVPN (UDP, tls-auth) and 2,000 obfs4 targets, run by the
real :class:`vpnwatch.monitor.Monitor` with its scheduler, metrics and HTTP server. Time is
compressed by shortening the interval: 10,000 targets every 20 s make the probes of 10,000 every
60 s three times over (the rate of 30,000 targets at 60 s), so the CPU share at 60 s is a third of
the one measured: the work is per probe, and nothing else grows with the rate. Lateness at the
compressed rate is what the larger fleet would see, an upper bound for the real one.

Jitter is off, so that every probe has a due time, and lateness is measured from outside through
the probe functions (see :meth:`benchmarks.monitored.ProbeLog.lateness`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.measure import gc_pauses, measured, memory_kib, percentile
from benchmarks.monitored import monitor_running
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import generate_pki, genkey
from vpnwatch.lab.wireguard import KeyPair
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.obfs4 import Obfs4Target
from vpnwatch.targets.openvpn import OpenVPNTarget
from vpnwatch.targets.wireguard import WireGuardTarget

FIRST_PORT = 20000
#: Of every ten targets: six WireGuard, two OpenVPN, two obfs4.
FLEET_PATTERN = ("wireguard",) * 6 + ("openvpn",) * 2 + ("obfs4",) * 2
PROBE_TIMEOUT = 5.0
#: Linux answers at most 1,000 ICMP errors a second per namespace (bursts of 50), which a fleet
#: behind one lab address outruns; real endpoints each have their own budget.
ICMP_BUDGET = ("net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=100000")


def fleet(count: int, host: str, static_key_pem: str) -> list[TargetBase]:
    """``count`` targets on closed ports of ``host``, one port each, in the fleet's mix."""
    monitor_key = KeyPair.generate()
    pki = generate_pki()
    targets: list[TargetBase] = []
    for index in range(count):
        protocol = FLEET_PATTERN[index % len(FLEET_PATTERN)]
        common: dict[str, Any] = {
            "name": f"{protocol}-{index}",
            "host": host,
            "port": FIRST_PORT + index,
        }
        if protocol == "wireguard":
            # Each target stands for another server with a key of its own.
            targets.append(
                WireGuardTarget(
                    **common,
                    private_key=monitor_key.private_b64,
                    public_key=KeyPair.generate().public_b64,
                )
            )
        elif protocol == "openvpn":
            targets.append(
                OpenVPNTarget(
                    **common,
                    ca=pki.ca,
                    cert=pki.client_cert,
                    key=pki.client_key,
                    tls_wrap="tls-auth",
                    tls_key=static_key_pem,
                    key_direction=1,
                )
            )
        else:
            node_id = index.to_bytes(20, "big")  # any bridge: nothing listens there
            targets.append(
                Obfs4Target(**common, node_id=node_id, public_key=KeyPair.generate().public)
            )
    return targets


async def run_fleet(
    targets: Sequence[TargetBase], interval: float, duration: float
) -> dict[str, Any]:
    """Run the monitor on ``targets`` for ``duration`` s; measure after the first interval."""
    timeout = min(PROBE_TIMEOUT, interval)
    async with monitor_running(targets, interval=interval, timeout=timeout, jitter=0) as run:
        await asyncio.sleep(interval)  # by now every target has started: offsets are below it
        window_start = asyncio.get_running_loop().time()
        started = run.log.probes_started()
        with measured() as usage, gc_pauses() as collections:
            await asyncio.sleep(duration - interval)
        probes = run.log.probes_started() - started
    late = run.log.lateness(interval, since=window_start)
    return {
        "probes_in_window": probes,
        "probes_expected": round(len(targets) * usage.wall / interval),
        "window_seconds": round(usage.wall, 1),
        "cpu_share": round(usage.cpu / usage.wall, 3),
        "cpu_per_probe_us": round(usage.cpu / max(1, probes) * 1e6),
        "outcomes": run.log.outcomes(),
        "tasks_outliving_cancel": run.outliving_cancel,
        "gc_pauses": len(collections.pauses),
        "gc_pause_max_ms": round(max(collections.pauses, default=0.0) * 1e3, 1),
        "lateness_ms": {
            "p50": round(percentile(late, 0.50) * 1e3, 1),
            "p99": round(percentile(late, 0.99) * 1e3, 1),
            "max": round(max(late, default=0.0) * 1e3, 1),
            "samples": len(late),
        },
    }


@contextlib.contextmanager
def _static_key() -> Iterator[str]:
    """A fresh OpenVPN static key for the fleet's tls-auth, made by ``openvpn --genkey``."""
    with tempfile.TemporaryDirectory() as directory:
        yield genkey("secret", Path(directory) / "static.key")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--freeze-gc",
        action="store_true",
        help="gc.freeze() once the targets are built: how much of the lateness full collections of "
        "the long-lived objects cause",
    )
    args = parser.parse_args(argv)
    if not 0 < args.interval < args.duration <= 600:
        parser.error("need 0 < interval < duration <= 600 s")
    logging.getLogger("vpnwatch").setLevel(logging.ERROR)  # one line per target would flood
    baseline = memory_kib("VmRSS")
    with Namespace() as namespace, _static_key() as static_key:
        namespace.exec(["sysctl", "-qw", *ICMP_BUDGET])
        began = time.monotonic()
        targets = fleet(args.targets, namespace.ip, static_key)
        built = time.monotonic() - began
        loaded = memory_kib("VmRSS")
        if args.freeze_gc:
            gc.freeze()
        report = asyncio.run(run_fleet(targets, args.interval, args.duration))
    report.update(
        targets=args.targets,
        interval=args.interval,
        compression=round(60 / args.interval, 2),
        gc_frozen=args.freeze_gc,
        targets_built_seconds=round(built, 1),
        rss_baseline_mib=round(baseline / 1024, 1),
        rss_with_targets_mib=round(loaded / 1024, 1),
        rss_peak_mib=round(memory_kib("VmHWM") / 1024, 1),
    )
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
