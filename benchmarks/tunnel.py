"""Tunnel tests: their CPU against the handshake's, and their round trips against ``ping``'s.

Run as root: ``python -m benchmarks.tunnel [--json FILE]``. In a lab namespace of its own:

1. **CPU.** A batch of plain WireGuard probes and a batch of tunnel tests (the default plan: a
   10-echo train, a 16-echo burst, a 5 s hold) against the real wireguard-go, one at a time; the
   process's CPU per probe and per tunnel test, and per echo of a test.
2. **Round trips.** With the censor's delay line adding 50 ms each way to the server's UDP port,
   a real client's tunnel — wireguard-go, its TUN interface moved into a namespace of its own — is
   pinged, and vpnwatch's tunnel test runs in the same minute over the same path; their RTT
   medians are compared (the goal: within 2 ms).

Timing goals live here, not in the tests: the machine is shared and its load varies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace, run
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.quality import TrainPlan, TunnelPlan

HANDSHAKES = 40
TUNNEL_TESTS = 10
DELAY_MS = 50.0
PINGS = 40
#: The tunnel test compared with ping: a train as long as ping's, nothing else.
RTT_PLAN = TunnelPlan(
    timeout=30, train=TrainPlan(echoes=PINGS, spacing=0.2, burst=0, hold_seconds=0)
)


async def cpu(server: WireGuardServer) -> dict[str, Any]:
    """CPU seconds per handshake probe and per tunnel test, one at a time."""
    probe, plan = PROBES["wireguard"], TunnelPlan()
    target = server.client_target("cpu", tunnel=True)
    await run_probe(probe, target, 5.0)  # warm up: code loaded, caches filled
    started = time.process_time()
    handshakes = [await run_probe(probe, target, 5.0) for _ in range(HANDSHAKES)]
    per_handshake = (time.process_time() - started) / HANDSHAKES
    started = time.process_time()
    tests = [await run_probe(probe, target, plan.timeout, plan) for _ in range(TUNNEL_TESTS)]
    per_test = (time.process_time() - started) / TUNNEL_TESTS
    echoes = statistics.mean(
        sum(count for _, count in test.tunnel.sent) for test in tests if test.tunnel is not None
    )
    return {
        "handshakes_ok": sum(r.ok for r in handshakes),
        "tunnel_tests_ok": sum(r.ok and not r.degraded for r in tests),
        "cpu_per_handshake_seconds": per_handshake,
        "cpu_per_tunnel_test_seconds": per_test,
        "echoes_per_tunnel_test": echoes,
        "cpu_per_echo_seconds": (per_test - per_handshake) / echoes,
        "tunnel_test_over_handshake": per_test / per_handshake,
    }


@contextmanager
def real_client(server: WireGuardServer) -> Iterator[str]:
    """wireguard-go as a user runs it, its interface moved into a namespace of its own; yields
    that namespace's name. Its UDP socket stays in this host's namespace, where the monitor's
    are, so both cross the same censor."""
    client = KeyPair.generate()
    source = server.add_peer(client.public)
    interface, namespace = f"vwwgc{server.namespace.slot}", f"vpnwatch-lab{server.namespace.slot}c"
    with tempfile.TemporaryDirectory(prefix="vpnwatch-wgc-") as directory:
        key = Path(directory) / "key"
        key.write_text(client.private_b64 + "\n")
        key.chmod(0o600)
        process = subprocess.Popen(
            ["env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", interface],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not Path(f"/var/run/wireguard/{interface}.sock").exists():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the client's wireguard-go did not start")
                time.sleep(0.02)
            peer = ["peer", server.keys.public_b64, "endpoint", server.endpoint()]
            allowed = ["allowed-ips", f"{server.tunnel_address}/32"]
            run(["wg", "set", interface, "private-key", str(key), *peer, *allowed])
            run(["ip", "netns", "add", namespace])
            run(["ip", "link", "set", interface, "netns", namespace])
            inside = ["ip", "netns", "exec", namespace]
            run([*inside, "ip", "addr", "add", f"{source}/32", "dev", interface])
            run([*inside, "ip", "link", "set", interface, "up"])
            run([*inside, "ip", "route", "add", f"{server.tunnel_address}/32", "dev", interface])
            yield namespace
        finally:
            process.terminate()
            process.wait(timeout=5)
            run(["ip", "netns", "del", namespace], check=False)
            Path(f"/var/run/wireguard/{interface}.sock").unlink(missing_ok=True)


def ping_rtts(namespace: str, address: str) -> list[float]:
    output = run(
        ["ip", "netns", "exec", namespace, "ping", "-n", "-c", str(PINGS), "-i", "0.2", address],
        check=False,
    )
    return [float(ms) / 1000 for ms in re.findall(r"time=([\d.]+) ms", output)]


async def rtt(server: WireGuardServer) -> dict[str, Any]:
    """Tunnel RTT p50 against ping's through a real client's tunnel, under an added delay."""
    censor = Censor(server.namespace)
    censor.apply("delay", "udp", server.port, ms=DELAY_MS)
    try:
        with real_client(server) as namespace:
            ping_rtts(namespace, server.tunnel_address)[:1]  # the client's handshake, first
            pinged = await asyncio.to_thread(ping_rtts, namespace, server.tunnel_address)
            tested = await run_probe(
                PROBES["wireguard"],
                server.client_target("rtt", tunnel=True),
                RTT_PLAN.timeout,
                RTT_PLAN,
            )
    finally:
        censor.clear()
    assert tested.tunnel is not None and tested.tunnel.rtt_median is not None, tested
    ping_p50 = statistics.median(pinged)
    return {
        "added_delay_each_way_ms": DELAY_MS,
        "ping_replies": len(pinged),
        "ping_p50_seconds": ping_p50,
        "tunnel_echoes_answered": len(tested.tunnel.rtts),
        "tunnel_p50_seconds": tested.tunnel.rtt_median,
        "difference_ms": (tested.tunnel.rtt_median - ping_p50) * 1000,
    }


async def measure() -> dict[str, Any]:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        return {"cpu": await cpu(server), "rtt": await rtt(server)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = asyncio.run(measure())
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
