"""A time-compressed soak: the real monitor on many lab targets while the lab misbehaves.

Many targets of every protocol at a short interval against the lab's real servers, while the lab
cycles through phases: all well, WireGuard stopped, restarted, and the lab's censor dropping,
rejecting, resetting and blocking handshakes by their bytes. At the end of each phase the soak records
the process's open file descriptors, asyncio tasks, threads and RSS, and how far every target's
probe count moved. A run passes when nothing grows between the first and last healthy phase and
every target was probed in every phase.

``scripts/soak.sh --hours 24`` runs it for a day; ``tests/hardening/test_soak.py`` for a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from vpnwatch.config import load_config
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge, Obfs4Server
from vpnwatch.lab.openvpn import OpenVPNLab, ServerVariant
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.monitor import Monitor
from vpnwatch.probes.registry import PROBES

OPENVPN_VARIANTS = (
    ServerVariant("udp-tls-auth", wrap="tls-auth"),
    ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
)


@dataclass(frozen=True)
class SoakPlan:
    seconds: float
    phase_seconds: float = 20.0
    interval: float = 1.0
    timeout: float = 0.8
    wireguard_targets: int = 24
    obfs4_targets: int = 4
    openvpn_targets: int = 4  # half per server variant
    closed_port_targets: int = 8


@dataclass(frozen=True)
class Sample:
    """The process's resources and progress at the end of one phase."""

    phase: str
    elapsed: float
    fds: int
    tasks: int
    threads: int
    rss_kib: int
    probes: int
    least_probed_in_phase: int  # the smallest increase of any target's probe count
    unprobed_in_phase: tuple[str, ...]


@dataclass
class SoakReport:
    plan: SoakPlan
    targets: int
    samples: list[Sample] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def baseline(self) -> Sample:
        """The first healthy phase after one whole cycle: caches and pools are full by then."""
        healthy = [s for s in self.samples if s.phase == "healthy"]
        return healthy[1] if len(healthy) > 2 else healthy[0]

    @property
    def final(self) -> Sample:
        return [s for s in self.samples if s.phase == "healthy"][-1]

    def problems(self) -> list[str]:
        """Why this run fails; empty when it passes.

        Each sample is one instant, so probes in flight at that moment hold sockets and executor
        threads spin up lazily: small slacks absorb that, while a leak grows without bound.
        """
        found = []
        base, end = self.baseline, self.final
        for what, before, after, slack in (
            ("file descriptors", base.fds, end.fds, 8),
            ("asyncio tasks", base.tasks, end.tasks, 2),
            ("threads", base.threads, end.threads, 4),
            ("RSS (KiB)", base.rss_kib, end.rss_kib, 16_384),
        ):
            if after > before + slack:
                found.append(f"{what} grew from {before} to {after}")
        found += [
            f"phase {s.phase} at {s.elapsed:.0f} s: not probed: {', '.join(s.unprobed_in_phase)}"
            for s in self.samples
            if s.unprobed_in_phase
        ]
        return found

    def summary(self) -> str:
        base, end = self.baseline, self.final
        hours = self.samples[-1].elapsed / 3600
        lines = [
            f"soak: {self.targets} targets every {self.plan.interval:g} s for {hours:.2f} h, "
            f"{len(self.samples)} phases of {self.plan.phase_seconds:g} s, "
            f"{self.samples[-1].probes:,} probes",
            f"  fds {base.fds} -> {end.fds}, tasks {base.tasks} -> {end.tasks}, "
            f"threads {base.threads} -> {end.threads}, "
            f"RSS {base.rss_kib} -> {end.rss_kib} KiB "
            f"(max {max(s.rss_kib for s in self.samples)} KiB)",
            "  least probes of one target in one phase: "
            f"{min(s.least_probed_in_phase for s in self.samples)}",
            f"  machine: {self.machine.get('cpus')} CPUs ({self.machine.get('cpu')}), "
            f"{self.machine.get('ram')} RAM",
        ]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems()]
        return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if "model name" in line), cpu)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{ram / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


# -- the lab ------------------------------------------------------------------------------------


@dataclass
class _Lab:
    namespace: Namespace
    wireguard: WireGuardServer
    bridge: Obfs4Bridge
    openvpn: OpenVPNLab
    censor: Censor

    def heal(self) -> None:
        """Lift the censor and make sure WireGuard runs, whichever phase came before."""
        self.censor.clear()
        if not self.wireguard.control_socket.exists():
            self.wireguard.start()

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        """What each phase does to the lab as it begins; the cycle ends healthy."""
        udp_openvpn = next(s for s in self.openvpn.servers.values() if s.variant.proto == "udp")
        return [
            ("healthy", self.heal),
            ("wireguard-stopped", self.wireguard.stop),
            ("wireguard-restarted", self.wireguard.start),
            ("censor-drop", lambda: self.censor.apply("drop", "udp", self.wireguard.port)),
            ("censor-reject", lambda: self.censor.apply("reject", "udp", udp_openvpn.port)),
            ("censor-reset", lambda: self.censor.apply("reset-data", "tcp", self.bridge.port)),
            ("censor-dpi", lambda: self.censor.apply("dpi")),
        ]


@contextlib.contextmanager
def _lab(directory: Path) -> Iterator[_Lab]:
    server_files = directory / "openvpn-server"
    server_files.mkdir()
    with (
        Namespace() as namespace,
        WireGuardServer(namespace) as wireguard,
        Obfs4Server(namespace) as bridge,
    ):
        openvpn = OpenVPNLab(namespace, server_files)
        openvpn.start(OPENVPN_VARIANTS)
        yield _Lab(namespace, wireguard, bridge, openvpn, Censor(namespace))


def _soak_tunnel(plan: SoakPlan) -> dict[str, Any]:
    """Tunnel tests that fit several times into a phase, failed ones included, so that a target
    busy with one is still probed in every phase; every few probes of each WireGuard target."""
    timeout = max(2 * plan.timeout, 1.5)
    train = {"echoes": 5, "spacing": 0.05, "burst": 4, "burst_seconds": 0.3,
             "hold_seconds": 0.3, "hold_spacing": 0.05, "linger": 0.3}  # fmt: skip
    return {"interval": max(5 * plan.interval, timeout), "timeout": timeout, "train": train}


def _write_config(lab: _Lab, plan: SoakPlan, directory: Path) -> Path:
    targets: list[dict[str, object]] = []
    for index in range(plan.wireguard_targets):
        client = KeyPair.generate()
        lab.wireguard.add_peer(client.public)
        (directory / f"wg{index}.conf").write_text(lab.wireguard.client_config(client))
        targets.append({"from": f"wg{index}.conf"})
    for index in range(plan.closed_port_targets):
        text = lab.wireguard.client_config(KeyPair.generate())
        (directory / f"closed{index}.conf").write_text(text.replace(":51820", f":{20000 + index}"))
        targets.append({"from": f"closed{index}.conf"})
    (directory / "bridge.bridges").write_text(lab.bridge.bridge_line() + "\n")
    targets += [{"from": "bridge.bridges", "name": f"obfs4-{i}"} for i in range(plan.obfs4_targets)]
    servers = list(lab.openvpn.servers.values())
    for index in range(plan.openvpn_targets):
        server = servers[index % len(servers)]
        lab.openvpn.write_client_file(server, directory / f"ovpn{index}.ovpn")
        targets.append({"from": f"ovpn{index}.ovpn"})
    settings = {
        "interval": plan.interval,
        "timeout": plan.timeout,
        "listen": "127.0.0.1:0",
        "tunnel": _soak_tunnel(plan),
    }
    path = directory / "vpnwatch.yml"
    path.write_text(yaml.safe_dump({"settings": settings, "targets": targets}))
    return path


# -- the run --------------------------------------------------------------------------------------


async def _listening(monitor: Monitor, task: asyncio.Task[None]) -> None:
    """Wait until the monitor serves; if it failed to start, raise what stopped it."""
    for _ in range(200):
        if monitor.address is not None:
            return
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    raise TimeoutError("the monitor did not start listening within 10 s")


async def _scrape(monitor: Monitor, session: aiohttp.ClientSession) -> None:
    """Read /metrics and /api/targets as Prometheus and a dashboard would."""
    assert monitor.address is not None
    host, port = monitor.address
    for path in ("/metrics", "/api/targets"):
        async with session.get(f"http://{host}:{port}{path}") as response:
            response.raise_for_status()
            await response.read()


async def run_soak(plan: SoakPlan, directory: Path, progress: Callable[[str], None]) -> SoakReport:
    """Run the soak in this event loop; the lab exists only for the call."""
    with _lab(directory) as lab:
        config = _write_config(lab, plan, directory)
        monitor = Monitor(lambda: load_config(config), PROBES)
        report = SoakReport(plan, targets=len(monitor.metrics.targets), machine=machine())
        task = asyncio.create_task(monitor.run())
        try:
            async with aiohttp.ClientSession() as session:
                await _listening(monitor, task)
                phases = _Phases(plan, monitor, session, report, progress)
                cycle = lab.phases()
                while phases.elapsed < plan.seconds:
                    await phases.run(*cycle[len(report.samples) % len(cycle)])
                await phases.run(*cycle[0])  # end healthy, to compare with the baseline
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return report


@dataclass
class _Phases:
    """Runs one phase at a time: change the lab, keep scraping, then sample the process."""

    plan: SoakPlan
    monitor: Monitor
    session: aiohttp.ClientSession
    report: SoakReport
    progress: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def run(self, name: str, action: Callable[[], None]) -> None:
        await asyncio.to_thread(action)
        targets = self.monitor.metrics.targets
        before = {name: stats.probes for name, stats in targets.items()}
        phase_end = time.monotonic() + self.plan.phase_seconds
        while time.monotonic() < phase_end:
            await _scrape(self.monitor, self.session)
            await asyncio.sleep(min(1.0, self.plan.phase_seconds / 4))
        sample = _sample(name, self.elapsed, self.monitor, before)
        self.report.samples.append(sample)
        self.progress(json.dumps(asdict(sample)))


def _sample(name: str, elapsed: float, monitor: Monitor, before: dict[str, int]) -> Sample:
    moved = {n: s.probes - before.get(n, 0) for n, s in monitor.metrics.targets.items()}
    return Sample(
        phase=name,
        elapsed=round(elapsed, 1),
        fds=len(os.listdir("/proc/self/fd")),
        tasks=len(asyncio.all_tasks()),
        threads=threading.active_count(),
        rss_kib=_rss_kib(),
        probes=sum(s.probes for s in monitor.metrics.targets.values()),
        least_probed_in_phase=min(moved.values()),
        unprobed_in_phase=tuple(sorted(n for n, count in moved.items() if count == 0)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=0.0)
    parser.add_argument("--minutes", type=float, default=0.0)
    parser.add_argument("--phase", type=float, default=30.0, help="seconds per lab phase")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between probes")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args(argv)
    seconds = args.hours * 3600 + args.minutes * 60 or 600
    plan = SoakPlan(
        seconds=seconds,
        phase_seconds=args.phase,
        interval=args.interval,
        timeout=min(0.8 * args.interval, 5.0),
    )
    with tempfile.TemporaryDirectory(prefix="vpnwatch-soak-") as directory:
        report = asyncio.run(run_soak(plan, Path(directory), lambda line: print(line, flush=True)))
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1) + "\n")
    print(report.summary())
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
