"""Part 2: one check by vpnwatch against one check by the real client, on the same lab endpoints.

Checks run one at a time, so that each one's wall time is its own. vpnwatch's CPU is this
process's; a real client's is the ``rusage`` of its process once it has been waited for (nothing
else this process starts runs meanwhile).

* OpenVPN: the Debian ``openvpn`` client on the same ``.ovpn`` file, run by
  :func:`vpnwatch.lab.openvpn.run_real_client` until "Initialization Sequence Completed" (or a
  fatal error), against vpnwatch's probe to ``auth`` (PUSH_REPLY).
* obfs4: ``obfs4proxy`` as a Tor managed client transport (``TOR_PT_*`` variables, as tor starts
  it), asked through its SOCKS5 port to connect to the bridge with the bridge line's arguments.
  It answers the SOCKS request only after its obfs4 handshake, so a success reply is the same
  verdict as vpnwatch's ``handshake`` stage. Two ways of running it are measured: a process per
  check, as a checker script would, and one resident process serving every check, as tor does.

Each endpoint also gets a case that must fail (a CA the server does not use, a stale bridge cert),
so that the verdicts compared are not only successes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import struct
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.lab import Lab
from benchmarks.measure import measured, process_cpu
from vpnwatch.lab.openvpn import run_real_client
from vpnwatch.probes.obfs4 import OBFS4
from vpnwatch.probes.openvpn import OPENVPN
from vpnwatch.result import Result
from vpnwatch.targets.obfs4 import Obfs4Target

OPENVPN_TIMEOUT = 10.0
OBFS4_TIMEOUT = 3.0
_PROXY_STARTUP = 10.0
_SOCKS_VERSION = 5
_SOCKS_USERNAME_PASSWORD = 2
_SOCKS_CONNECT = 1
_SOCKS_IPV4 = 1
_SOCKS_SUCCEEDED = 0


@dataclass
class Checks:
    """Repeated checks by one client of one endpoint: CPU and wall per check, and the verdicts."""

    cpu: float = 0.0
    wall: float = 0.0
    count: int = 0
    verdicts: set[str] = field(default_factory=set)

    def add(self, cpu: float, wall: float, verdict: str) -> None:
        self.cpu += cpu
        self.wall += wall
        self.count += 1
        self.verdicts.add(verdict)

    def row(self) -> dict[str, Any]:
        return {
            "checks": self.count,
            "cpu_per_check_ms": round(self.cpu / self.count * 1e3, 2),
            "wall_per_check_ms": round(self.wall / self.count * 1e3, 1),
            "verdict": " / ".join(sorted(self.verdicts)),
        }


def _verdict(result: Result) -> str:
    return "ok" if result.ok else f"{result.failure} at {result.stage}"


def _compare(name: str, vpnwatch: Checks, real: Checks, real_name: str) -> dict[str, Any]:
    agree = {v == "ok" for v in vpnwatch.verdicts} == {v == "ok" for v in real.verdicts}
    return {"case": name, "vpnwatch": vpnwatch.row(), real_name: real.row(), "agree": agree}


async def compare_openvpn(lab: Lab, checks: int) -> list[dict[str, Any]]:
    """Every lab OpenVPN server with its right config, and one server with a wrong CA."""
    cases = [(variant, lab.ovpn(variant), checks) for variant in lab.openvpn.servers]
    first = next(iter(lab.openvpn.servers))
    cases.append((f"{first}, wrong CA", lab.ovpn(first, wrong_ca=True), 1))
    probe = OPENVPN.probe()
    rows = []
    for name, ovpn, count in cases:
        target = lab.openvpn_target(ovpn)
        ours, theirs = Checks(), Checks()
        for _ in range(count):
            with measured() as usage:
                result = await probe(target, OPENVPN_TIMEOUT)
            ours.add(usage.cpu, usage.wall, _verdict(result))
            with measured(resource.RUSAGE_CHILDREN) as usage:
                outcome = await run_real_client(ovpn, OPENVPN_TIMEOUT)
            theirs.add(usage.cpu, usage.wall, "ok" if outcome.ok else "failed")
        rows.append(_compare(f"openvpn {name}", ours, theirs, "openvpn"))
    return rows


async def compare_obfs4(lab: Lab, checks: int) -> list[dict[str, Any]]:
    """The bridge from its bridge line, and from a line with a stale cert."""
    rows = []
    for name, target, count in (
        ("obfs4", lab.obfs4_target(), checks),
        ("obfs4, stale cert", lab.obfs4_target(wrong_cert=True), 1),
    ):
        ours, per_check, resident = Checks(), Checks(), Checks()
        for _ in range(count):
            with measured() as usage:
                result = await OBFS4.probe()(target, OBFS4_TIMEOUT)
            ours.add(usage.cpu, usage.wall, _verdict(result))
            with measured(resource.RUSAGE_CHILDREN) as usage:
                async with obfs4proxy_client() as (_, socks):
                    verdict = await socks_connect(socks, target)
            per_check.add(usage.cpu, usage.wall, verdict)
        async with obfs4proxy_client() as (pid, socks):
            for _ in range(count):
                before = process_cpu(pid)
                with measured() as usage:
                    verdict = await socks_connect(socks, target)
                resident.add(process_cpu(pid) - before, usage.wall, verdict)
        row = _compare(name, ours, per_check, "obfs4proxy")
        row["obfs4proxy resident"] = resident.row()
        rows.append(row)
    return rows


@contextlib.asynccontextmanager
async def obfs4proxy_client() -> AsyncIterator[tuple[int, tuple[str, int]]]:
    """``obfs4proxy`` as tor runs a client transport; yields its pid and SOCKS5 address."""
    with tempfile.TemporaryDirectory(prefix="vpnwatch-bench-pt-") as state:
        process = await asyncio.create_subprocess_exec(
            "obfs4proxy",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "TOR_PT_MANAGED_TRANSPORT_VER": "1",
                "TOR_PT_STATE_LOCATION": state,
                "TOR_PT_CLIENT_TRANSPORTS": "obfs4",
                "TOR_PT_EXIT_ON_STDIN_CLOSE": "1",
            },
        )
        try:
            async with asyncio.timeout(_PROXY_STARTUP):
                socks = await _socks_address(process)
            yield process.pid, socks
        finally:
            assert process.stdin is not None
            process.stdin.close()  # TOR_PT_EXIT_ON_STDIN_CLOSE: how tor tells it to leave
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _socks_address(process: asyncio.subprocess.Process) -> tuple[str, int]:
    """Read the managed-proxy protocol lines up to ``CMETHODS DONE``."""
    assert process.stdout is not None
    address: tuple[str, int] | None = None
    while line := (await process.stdout.readline()).decode().strip():
        words = line.split()
        if words[:3] == ["CMETHOD", "obfs4", "socks5"]:
            host, _, port = words[3].rpartition(":")
            address = (host, int(port))
        elif words[0].endswith("ERROR"):
            raise RuntimeError(f"obfs4proxy: {line}")
        elif line == "CMETHODS DONE" and address is not None:
            return address
    raise RuntimeError("obfs4proxy exited before offering a SOCKS5 port")


async def socks_connect(proxy: tuple[str, int], target: Obfs4Target) -> str:
    """Ask the proxy to reach the bridge; "ok" once it replies that it has (after the handshake).

    The bridge line's arguments go in the SOCKS5 username, and the password is one NUL byte, as
    the pluggable transport specification says for arguments shorter than 255 bytes.
    """
    reader, writer = await asyncio.open_connection(*proxy)
    try:
        async with asyncio.timeout(OBFS4_TIMEOUT):
            writer.write(bytes([_SOCKS_VERSION, 1, _SOCKS_USERNAME_PASSWORD]))
            if (await reader.readexactly(2))[1] != _SOCKS_USERNAME_PASSWORD:
                return "failed: proxy refused username/password"
            arguments = f"cert={target.cert};iat-mode={target.iat_mode}".encode()
            writer.write(bytes([1, len(arguments)]) + arguments + b"\x01\x00")
            if (await reader.readexactly(2))[1] != 0:
                return "failed: proxy refused the arguments"
            request = struct.pack("!BBBB", _SOCKS_VERSION, _SOCKS_CONNECT, 0, _SOCKS_IPV4)
            writer.write(request + socket.inet_aton(target.host) + struct.pack("!H", target.port))
            reply = await reader.readexactly(10)  # header, then an IPv4 address and port
    except TimeoutError:
        return f"failed: no reply within {OBFS4_TIMEOUT:g} s"
    except asyncio.IncompleteReadError:
        return "failed: proxy closed the connection"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return "ok" if reply[1] == _SOCKS_SUCCEEDED else f"failed: SOCKS reply {reply[1]}"


async def compare_clients(lab: Lab, checks: int) -> dict[str, Any]:
    started = time.monotonic()
    rows = await compare_openvpn(lab, checks) + await compare_obfs4(lab, checks)
    return {"checks": checks, "seconds": round(time.monotonic() - started, 1), "cases": rows}
