"""Part 4: how exactly the monitor measures handshake latency, alone and while 500 others run.

Twenty WireGuard targets reach a server of their own, in a second lab namespace, through
:mod:`benchmarks.delay_relay`, which holds each datagram towards the server 50 ms; the monitor
probes them every second, first alone, then together with 500 other WireGuard targets that
handshake with the main lab's server (500 verified handshakes a second), so that the others load
the monitor but not the server being measured. The error of a measurement is the duration the probe
reports, the figure behind ``vpnwatch_handshake_duration_seconds``, less the 50 ms added: what
remains is the real round trip, the probe's own work before and after it, and the event loop's
lateness in noticing the reply. The relay reports how late it released datagrams, which bounds the
error of the reference.

The lab's censor has a ``delay`` mode (:mod:`vpnwatch.lab.censor`), which landed while this was
written; here its delay line passes no WireGuard handshake (its own test of that fails too), so
this benchmark keeps its own relay.
"""

from __future__ import annotations

import asyncio
import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.lab import Lab
from benchmarks.measure import percentile
from benchmarks.monitored import monitor_running
from vpnwatch.importers import load_file
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.result import Result
from vpnwatch.targets.wireguard import WireGuardTarget

DELAY = 0.050
RELAY_PORT = 51899
TIMED_TARGETS = 20
LOAD_TARGETS = 500
INTERVAL = 1.0
TIMEOUT = 0.9
_RELAY_STARTUP = 10.0
_REPOSITORY = Path(__file__).resolve().parent.parent


@contextmanager
def delayed_server(lab: Lab) -> Iterator[tuple[list[WireGuardTarget], dict[str, Any]]]:
    """A WireGuard server behind the delay relay, one target per client key of it, and a dict
    that fills with the relay's own report when it stops."""
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        targets = []
        for index in range(TIMED_TARGETS):
            client = KeyPair.generate()
            server.add_peer(client.public)
            path = lab.directory / f"timed-{index}.conf"
            path.write_text(server.client_config(client))
            path.chmod(0o600)
            (target,) = load_file(path)
            assert isinstance(target, WireGuardTarget)
            targets.append(target.model_copy(update={"port": RELAY_PORT}))
        with _relay(namespace, server.port) as report:
            yield targets, report


@contextmanager
def _relay(namespace: Namespace, server_port: int) -> Iterator[dict[str, Any]]:
    argv = [
        sys.executable, "-m", "benchmarks.delay_relay",
        "--listen", f"{namespace.ip}:{RELAY_PORT}",
        "--server", f"127.0.0.1:{server_port}",
        "--delay", str(DELAY),
    ]  # fmt: skip
    relay = namespace.spawn(argv, stdout=subprocess.PIPE, cwd=_REPOSITORY)
    assert relay.stdout is not None
    ready, _, _ = select.select([relay.stdout], [], [], _RELAY_STARTUP)
    if not ready or relay.stdout.readline().strip() != b"ready":
        relay.kill()
        raise RuntimeError("the delay relay did not start")
    report: dict[str, Any] = {}
    try:
        yield report
    finally:
        relay.send_signal(signal.SIGTERM)
        output, _ = relay.communicate(timeout=10)
        report.update(json.loads(output.decode().strip().splitlines()[-1]))


async def _latencies(
    timed: Sequence[WireGuardTarget], others: Sequence[WireGuardTarget], seconds: float
) -> dict[str, Any]:
    """Run the monitor on every target for ``seconds``; the timed targets' results, summed up."""
    async with monitor_running([*timed, *others], interval=INTERVAL, timeout=TIMEOUT) as run:
        await asyncio.sleep(seconds)
    results = [result for target in timed for result in run.log.results[target.name][1:]]
    errors = [result.duration - DELAY for result in results if result.ok]
    return {
        "samples": len(errors),
        "failed": sum(not result.ok for result in results),
        "after_cookie": sum("cookie" in result.detail for result in results),
        "measured_p50_ms": round((percentile(errors, 0.5) + DELAY) * 1e3, 2),
        "error_p50_ms": round(percentile(errors, 0.50) * 1e3, 2),
        "error_p99_ms": round(percentile(errors, 0.99) * 1e3, 2),
        "error_max_ms": round(max(errors, default=0.0) * 1e3, 2),
        "other_probes_ok": _ok_share(run.log.results, others),
    }


def _ok_share(results: dict[str, list[Result]], targets: Sequence[WireGuardTarget]) -> str:
    found = [result.ok for target in targets for result in results[target.name]]
    return f"{sum(found)}/{len(found)}" if found else "-"


async def measure_accuracy(lab: Lab, *, seconds: float) -> dict[str, Any]:
    """The error alone, for a third of ``seconds``, then with the others for ``seconds``."""
    targets = lab.wireguard_targets()
    # Several load targets share a key, as a monitor's one key serves many servers; the probe
    # spaces their initiations to the server 20 ms apart.
    others = [
        targets[index % len(targets)].model_copy(update={"name": f"load-{index}"})
        for index in range(LOAD_TARGETS)
    ]
    started = time.monotonic()
    with delayed_server(lab) as (timed, relay):
        alone = await _latencies(timed, [], seconds / 3)
        loaded = await _latencies(timed, others, seconds)
    return {
        "delay_ms": DELAY * 1e3,
        "timed_targets": TIMED_TARGETS,
        "other_targets": LOAD_TARGETS,
        "interval": INTERVAL,
        "alone": alone,
        "with_others": loaded,
        "relay": relay,
        "seconds": round(time.monotonic() - started, 1),
    }
