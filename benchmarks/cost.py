"""Part 1: CPU per probe of the monitor process, against each protocol's cryptographic floor.

A bounded batch of probes runs through :func:`vpnwatch.probes.run_probe`, the call the scheduler
makes, with a cap on how many are in flight, as the scheduler's semaphore caps them; the process's
CPU over the batch divided by the probes in it is the figure. The servers run in the lab namespace,
other processes, so their work is not counted, except the kernel's delivery of our packets into
the namespace, which the veth link does inside our ``send``.

``--profile`` writes a cProfile listing of each batch next to the JSON: a figure far from its
floor must be explained or fixed, and that starts from where the time goes.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.floors import (
    OBFS4_X25519_OPERATIONS,
    WIREGUARD_X25519_OPERATIONS,
    elligator_cost,
    obfs4_floor,
    openvpn_floor,
    tor_link_floor,
    wireguard_floor,
)
from benchmarks.lab import Lab
from benchmarks.machine_alone import wireguard_machine_alone
from benchmarks.measure import Usage, measured
from vpnwatch.probes import Probe, run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import Result
from vpnwatch.targets.base import TargetBase

PROBE_TIMEOUT = 5.0
#: Probes in flight at once; below the scheduler's default cap of 256, as a steady monitor runs.
CONCURRENCY = 32
#: Probes run before the measured batch, so that it finds code loaded and caches warm; at least
#: one per target, so that what a probe keeps per target (WireGuard's static-key work) is kept,
#: as in a monitor that has probed each once (a third of a 3,000-probe batch over 1,000 keys
#: paid for it, about 60 µs a probe).
WARM_UP = 16
#: OpenVPN 2.6 answers at most 100 new UDP sessions per 10 s (``connect-freq-initial``) and stays
#: silent to the rest; a batch larger than that (with its warm-up) would measure timeouts.
OPENVPN_BATCH = 80
FLOOR_ROUNDS = 500


@dataclass(frozen=True)
class Batch:
    """What one batch found: counts, CPU and wall time, and how the probes ended."""

    name: str
    probes: int
    ok: int
    user: float
    system: float
    wall: float
    outcomes: dict[str, int]

    @property
    def cpu_per_probe(self) -> float:
        return (self.user + self.system) / self.probes


async def run_batch(
    name: str,
    targets: Sequence[TargetBase],
    count: int,
    *,
    concurrency: int = CONCURRENCY,
    profile_to: Path | None = None,
) -> Batch:
    """``count`` probes over ``targets`` in turn, at most ``concurrency`` at once."""
    probe: Probe = PROBES[targets[0].protocol]
    slots = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Result:
        async with slots:
            return await run_probe(probe, targets[index % len(targets)], PROBE_TIMEOUT)

    await asyncio.gather(*(one(index) for index in range(max(WARM_UP, len(targets)))))
    profiler = cProfile.Profile() if profile_to is not None else None
    with measured() as usage:
        if profiler is not None:
            profiler.enable()
        results = await asyncio.gather(*(one(index) for index in range(count)))
        if profiler is not None:
            profiler.disable()
    if profiler is not None and profile_to is not None:
        _write_profile(profiler, profile_to)
    return _batch(name, results, usage)


async def run_paced(
    name: str, targets: Sequence[TargetBase], rate: float, seconds: float, group: int
) -> Batch:
    """Probes at ``rate`` a second for ``seconds``, started ``group`` at a time, with no monitor.

    The scheduler starts a monitor's probes in groups (its tick gathers about ``TICK_BATCH``)
    spread over time, not back to back as :func:`run_batch` does: between groups the process
    sleeps, and each group finds its caches cold. This figure is the probes alone at the pace a
    monitor runs them, so that what the monitor's own code costs on top is a number of its own.
    """
    probe: Probe = PROBES[targets[0].protocol]
    loop = asyncio.get_running_loop()
    count = max(group, round(rate * seconds) // group * group)
    started: list[asyncio.Task[Result]] = []
    with measured() as usage:
        began = loop.time()
        for first in range(0, count, group):
            await asyncio.sleep(max(0.0, began + first / rate - loop.time()))
            started += [
                asyncio.ensure_future(
                    run_probe(probe, targets[index % len(targets)], PROBE_TIMEOUT)
                )
                for index in range(first, first + group)
            ]
        results = await asyncio.gather(*started)
    return _batch(name, results, usage)


def _batch(name: str, results: Sequence[Result], usage: Usage) -> Batch:
    return Batch(
        name=name,
        probes=len(results),
        ok=sum(result.ok for result in results),
        user=usage.user,
        system=usage.system,
        wall=usage.wall,
        outcomes=dict(Counter(_outcome(result) for result in results)),
    )


def _outcome(result: Result) -> str:
    return "ok" if result.ok else f"{result.failure} at {result.stage}"


def _write_profile(profiler: cProfile.Profile, path: Path) -> None:
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.getvalue())


async def measure_costs(lab: Lab, *, scale: float, profile_dir: Path | None) -> dict[str, Any]:
    """Every protocol's batch and floor; ``scale`` shrinks the batches for a quick run."""

    def batch_size(full: int) -> int:
        return max(CONCURRENCY, int(full * scale))

    def profile(name: str) -> Path | None:
        return None if profile_dir is None else profile_dir / f"profile-{name}.txt"

    rows: dict[str, Any] = {}
    wireguard = await run_batch(
        "wireguard", lab.wireguard_targets(), batch_size(3000), profile_to=profile("wireguard")
    )
    rows["wireguard"] = _row(
        wireguard,
        wireguard_floor(FLOOR_ROUNDS),
        f"{WIREGUARD_X25519_OPERATIONS} X25519 operations",
    )
    machine = wireguard_machine_alone(lab.wireguard_targets()[0], FLOOR_ROUNDS)
    rows["wireguard"]["machine_alone_us"] = round(machine * 1e6)
    tls_floor = openvpn_floor(lab.openvpn.pki, FLOOR_ROUNDS // 5)
    for variant in lab.openvpn.servers:
        target = lab.openvpn_target(lab.ovpn(variant))
        batch = await run_batch(
            f"openvpn {variant}", [target], OPENVPN_BATCH, profile_to=profile(variant)
        )
        rows[f"openvpn {variant}"] = _row(batch, tls_floor, "client side of the TLS handshake")
    obfs4 = await run_batch(
        "obfs4", [lab.obfs4_target()], batch_size(1000), profile_to=profile("obfs4")
    )
    rows["obfs4"] = _row(
        obfs4, obfs4_floor(FLOOR_ROUNDS), f"{OBFS4_X25519_OPERATIONS} X25519 operations"
    )
    rows["obfs4"]["elligator_us"] = round(elligator_cost(FLOOR_ROUNDS // 5) * 1e6)
    rows["obfs4 + tor link"] = await tor_link_cost(lab, batch_size(300), profile("obfs4-tor"))
    return rows


async def tor_link_cost(lab: Lab, count: int, profile_to: Path | None) -> dict[str, Any]:
    """obfs4 with ``data: tor`` to the lab's tor bridge, against the obfs4 floor plus the link's.

    ``link_floor_us`` alone is what the link check's public-key work costs, to set beside the
    handshake it follows (the obfs4 row)."""
    batch = await run_batch(
        "obfs4 + tor link", [lab.obfs4_tor_target()], count, profile_to=profile_to
    )
    link_floor = tor_link_floor(FLOOR_ROUNDS // 5)
    row = _row(
        batch,
        obfs4_floor(FLOOR_ROUNDS) + link_floor,
        f"{OBFS4_X25519_OPERATIONS} X25519 operations, TLS 1.3 key share and RSA-2048 "
        "signature check, 3 RSA-1024 and 2 Ed25519 signature checks",
    )
    row["link_floor_us"] = round(link_floor * 1e6)
    return row


def _row(batch: Batch, floor: float, floor_is: str) -> dict[str, Any]:
    return {
        "probes": batch.probes,
        "ok": batch.ok,
        "outcomes": batch.outcomes,
        "concurrency": CONCURRENCY,
        "cpu_per_probe_us": round(batch.cpu_per_probe * 1e6),
        "user_per_probe_us": round(batch.user / batch.probes * 1e6),
        "system_per_probe_us": round(batch.system / batch.probes * 1e6),
        "probes_per_second": round(batch.probes / batch.wall),
        "floor_us": round(floor * 1e6),
        "floor_is": floor_is,
        "ratio_to_floor": round(batch.cpu_per_probe / floor, 2),
    }
