"""OpenVPN tunnel tests: their CPU against the handshake's, and their RTT beside ``ping``.

``python -m benchmarks.openvpn_tunnel`` (root) starts one UDP and one TCP openvpn 2.6 server in a
lab namespace and measures, for each:

1. **CPU per probe** of this process: a batch of handshake probes (reset → tls → auth), then a
   batch of tunnel tests with the default plan (the handshake, then the train, burst and hold
   of :class:`~vpnwatch.quality.TrainPlan`), each run as the scheduler runs them; the tunnel test
   alone costs the difference.
2. **Round trips under an added delay**: the lab's censor holds every packet of the server's port
   ``--delay-ms`` each way; then tunnel tests (trains of echoes only) and ``ping`` through the real
   ``openvpn`` client's tunnel (its tun device in a namespace of its own) run one after the other
   in the same run, and their medians are compared. The issue's goal: within 2 ms.

Prints one JSON document (``--out`` writes it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.measure import measured, percentile
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import (
    OpenVPNLab,
    RunningServer,
    ServerVariant,
    ping_through_real_client,
)
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.quality import TrainPlan, TunnelPlan
from vpnwatch.result import Result
from vpnwatch.targets.openvpn import OpenVPNTarget

VARIANTS = (
    ServerVariant("udp-tls-auth", wrap="tls-auth"),
    ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
)
#: OpenVPN 2.6 answers at most 100 new sessions per 10 s (connect-freq-initial); each batch with
#: its warm-up stays below that, and the next waits the window out.
CONNECT_FREQ_WINDOW = 10.0
HANDSHAKES = 64
TUNNEL_TESTS = 32
WARM_UP = 4
CONCURRENCY = 32
HANDSHAKE_TIMEOUT = 5.0
#: The monitor's tunnel test: the default plan.
DEFAULT_PLAN = TunnelPlan()
#: For round trips: a train of echoes, nothing else, spaced wider than a round trip, so that over
#: TCP no echo waits in Nagle's algorithm for the ACK of the one before (ping alike).
ECHOES = 20
SPACING = 0.3
RTT_PLAN = TunnelPlan(
    timeout=20.0,
    train=TrainPlan(echoes=ECHOES, spacing=SPACING, burst=0, hold_seconds=0, linger=1.0),
)
RTT_TESTS = 3


async def _batch(
    target: OpenVPNTarget, count: int, timeout: float, plan: TunnelPlan | None
) -> tuple[list[Result], float]:
    """``count`` probes at most :data:`CONCURRENCY` at once: the results and CPU seconds each."""
    probe = PROBES[target.protocol]
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one() -> Result:
        async with slots:
            return await run_probe(probe, target, timeout, plan)

    await asyncio.gather(*(one() for _ in range(WARM_UP)))
    with measured() as usage:
        results = await asyncio.gather(*(one() for _ in range(count)))
    return results, usage.cpu / count


def _outcomes(results: list[Result]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        key = "ok" if result.ok else f"{result.failure} at {result.stage}"
        counts[key] = counts.get(key, 0) + 1
    return counts


async def cpu(target: OpenVPNTarget) -> dict[str, Any]:
    handshakes, handshake_cpu = await _batch(target, HANDSHAKES, HANDSHAKE_TIMEOUT, None)
    await asyncio.sleep(CONNECT_FREQ_WINDOW)
    tests, test_cpu = await _batch(target, TUNNEL_TESTS, DEFAULT_PLAN.timeout, DEFAULT_PLAN)
    await asyncio.sleep(CONNECT_FREQ_WINDOW)
    qualities = [result.tunnel for result in tests if result.tunnel is not None]
    return {
        "handshake_cpu_us": round(handshake_cpu * 1e6),
        "handshake_outcomes": _outcomes(handshakes),
        "tunnel_test_cpu_us": round(test_cpu * 1e6),
        "tunnel_test_outcomes": _outcomes(tests),
        "tunnel_alone_cpu_us": round((test_cpu - handshake_cpu) * 1e6),
        "echoes_per_test": round(
            sum(sum(n for _, n in q.sent) for q in qualities) / max(len(qualities), 1)
        ),
        "inner_bytes_per_test": round(
            sum(q.bytes_sent + q.bytes_received for q in qualities) / max(len(qualities), 1)
        ),
    }


async def round_trips(
    lab: OpenVPNLab, server: RunningServer, config: Path, delay_ms: float
) -> dict[str, Any]:
    (target,) = load_ovpn(config)
    censor = Censor(lab.namespace)
    censor.apply("delay", server.variant.proto, server.port, ms=delay_ms)
    try:
        probe = PROBES["openvpn"]
        ours: list[float] = []
        for _ in range(RTT_TESTS):
            result = await run_probe(probe, target, RTT_PLAN.timeout, RTT_PLAN)
            if result.tunnel is not None:
                ours += result.tunnel.rtts
        device = f"vwb{lab.namespace.slot}{server.variant.proto}"
        theirs = await ping_through_real_client(
            config,
            server.tunnel_address,
            device=device,
            count=RTT_TESTS * ECHOES,
            interval=SPACING,
            timeout=40.0,
        )
    finally:
        censor.clear()
    ours_p50, theirs_p50 = percentile(ours, 0.5), percentile(theirs.rtts, 0.5)
    return {
        "added_delay_ms_each_way": delay_ms,
        "probe_echoes": len(ours),
        "probe_rtt_p50_ms": round(ours_p50 * 1e3, 2),
        "ping_replies": len(theirs.rtts),
        "ping_rtt_p50_ms": round(theirs_p50 * 1e3, 2),
        "difference_ms": round((ours_p50 - theirs_p50) * 1e3, 2),
    }


async def measure(lab: OpenVPNLab, directory: Path, delay_ms: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, server in lab.servers.items():
        config = lab.write_client_file(server, directory / f"{name}.ovpn")
        (target,) = load_ovpn(config)
        figures[name] = await cpu(target)
        figures[name]["round_trips"] = await round_trips(lab, server, config, delay_ms)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.openvpn_tunnel", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--delay-ms", type=float, default=50.0, help="added each way (50)")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the benchmark builds network namespaces: run it as root")
    logging.getLogger("vpnwatch").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="vpnwatch-bench-") as work, Namespace() as namespace:
        directory = Path(work)
        lab = OpenVPNLab(namespace, directory)
        lab.start(VARIANTS, first_port=1794)
        figures = asyncio.run(measure(lab, directory, args.delay_ms))
    text = json.dumps(figures, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
