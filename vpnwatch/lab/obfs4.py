"""The lab's obfs4 bridge: the real Debian obfs4proxy.

:class:`Obfs4Server` runs ``obfs4proxy`` as a Tor managed server transport (configured entirely
through ``TOR_PT_*`` variables, as tor itself would) inside a lab namespace, in front of a small
echo backend standing in for the relay's ORPort. Its cert is read back from the state directory
obfs4proxy writes, exactly as a bridge operator would copy it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vpnwatch.lab.netns import LabError, Namespace, stop_process
from vpnwatch.lab.process import ECHO_HANDLER, LabService, close_pipes, read_until
from vpnwatch.targets.base import format_endpoint

STATE_FILE = "obfs4_state.json"
BRIDGE_LINE_FILE = "obfs4_bridgeline.txt"
DEFAULT_PORT = 4443

# The echo backend runs in the namespace as its own interpreter so that the lab needs no package
# beyond Python; it prints "ready PORT" once it listens.
_ECHO_BACKEND = f"""
import asyncio, sys
{ECHO_HANDLER}
async def main():
    server = await asyncio.start_server(echo, sys.argv[1], 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


@dataclass(frozen=True)
class BridgeIdentity:
    """A bridge's long-term keys, as obfs4proxy keeps them in its state file."""

    node_id: bytes
    public_key: bytes
    private_key: bytes = field(repr=False)

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> BridgeIdentity:
        state = json.loads((state_dir / STATE_FILE).read_text())
        return cls(
            node_id=bytes.fromhex(state["node-id"]),
            public_key=bytes.fromhex(state["public-key"]),
            private_key=bytes.fromhex(state["private-key"]),
        )


@dataclass(frozen=True)
class Obfs4Bridge:
    """A running lab bridge: where it listens, its cert as published, and its keys."""

    host: str
    port: int
    cert: str
    iat_mode: int
    identity: BridgeIdentity
    #: The fingerprint of the Tor relay behind the bridge; None behind an echo backend.
    relay_fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """The relay's fingerprint, or a stand-in when no tor runs behind the bridge."""
        return self.relay_fingerprint or self.identity.node_id.hex().upper()

    def bridge_line(self, *, cert: str | None = None, fingerprint: str | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"Bridge obfs4 {host}:{self.port} {fingerprint or self.fingerprint} "
            f"cert={cert or self.cert} iat-mode={self.iat_mode}"
        )


class Obfs4Server(LabService[Obfs4Bridge]):
    """obfs4proxy and its echo backend in ``namespace``; stopped on exit or with the namespace."""

    def __init__(
        self,
        namespace: Namespace,
        *,
        iat_mode: int = 0,
        port: int = DEFAULT_PORT,
        host: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.iat_mode = iat_mode
        self.port = port
        #: The address it listens on: the namespace's IPv4 address unless told otherwise.
        self.host = host or namespace.ip
        self.state_dir = Path(tempfile.mkdtemp(prefix="vpnwatch-obfs4-"))
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> Obfs4Bridge:
        if shutil.which("obfs4proxy") is None:
            raise LabError("obfs4proxy is not installed (Debian package obfs4proxy)")
        echo = self._spawn([sys.executable, "-c", _ECHO_BACKEND, "127.0.0.1"])
        echo_port = read_until(
            echo, lambda line: line.startswith("ready "), "echo backend", failed=_pt_error
        )[6:]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TOR_PT_MANAGED_TRANSPORT_VER": "1",
            "TOR_PT_STATE_LOCATION": str(self.state_dir),
            "TOR_PT_SERVER_TRANSPORTS": "obfs4",
            "TOR_PT_SERVER_BINDADDR": f"obfs4-{format_endpoint(self.host, self.port)}",
            "TOR_PT_SERVER_TRANSPORT_OPTIONS": f"obfs4:iat-mode={self.iat_mode}",
            "TOR_PT_ORPORT": f"127.0.0.1:{echo_port}",
            "TOR_PT_EXIT_ON_STDIN_CLOSE": "1",
        }
        proxy = self._spawn(["obfs4proxy", "-enableLogging", "-logLevel", "INFO"], env=env)
        read_until(proxy, lambda line: line == "SMETHODS DONE", "obfs4proxy", failed=_pt_error)
        return Obfs4Bridge(
            host=self.host,
            port=self.port,
            cert=published_cert(self.state_dir),
            iat_mode=self.iat_mode,
            identity=BridgeIdentity.from_state_dir(self.state_dir),
        )

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = self.namespace.spawn(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._processes.append(proc)
        return proc

    def log(self) -> str:
        """obfs4proxy's own log, for a failing test's report."""
        path = self.state_dir / "obfs4proxy.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        for proc in reversed(self._processes):
            self.namespace.stop(proc)
            close_pipes(proc)
        self._processes.clear()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def published_cert(state_dir: Path) -> str:
    """The ``cert=`` of the bridge line obfs4proxy wrote to its state directory."""
    text = (state_dir / BRIDGE_LINE_FILE).read_text()
    match = re.search(r"^Bridge obfs4 .* cert=(\S+) ", text, re.MULTILINE)
    if match is None:
        raise LabError(f"no bridge line in {state_dir / BRIDGE_LINE_FILE}")
    return match.group(1)


def _pt_error(line: str) -> bool:
    """obfs4proxy's managed-transport protocol reports failures as ``*-ERROR`` lines."""
    return "ERROR" in line.split(" ", 1)[0]


class Obfs4Client(LabService[int]):
    """obfs4proxy as Tor runs it for a bridge: a managed client transport, offering SOCKS5.

    Configured through the ``TOR_PT_*`` variables alone, as tor does; ``wrap`` runs its command
    where the client should be (``Vantage.argv``). Each connection names its bridge in the SOCKS
    request and carries the bridge line's arguments as the SOCKS username (pt-spec 3.5).
    """

    def __init__(self, wrap: Callable[[list[str]], list[str]]) -> None:
        self._wrap = wrap
        self.state_dir = Path(tempfile.mkdtemp(prefix="vpnwatch-obfs4-client-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Start it; the port of its SOCKS5 listener on the loopback where it runs."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TOR_PT_MANAGED_TRANSPORT_VER": "1",
            "TOR_PT_CLIENT_TRANSPORTS": "obfs4",
            "TOR_PT_STATE_LOCATION": str(self.state_dir),
            "TOR_PT_EXIT_ON_STDIN_CLOSE": "1",
        }
        self._process = subprocess.Popen(
            self._wrap(["obfs4proxy"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        # "CMETHOD obfs4 socks5 127.0.0.1:PORT" comes once its listener is up.
        line = read_until(
            self._process,
            lambda line: line.startswith("CMETHOD obfs4 "),
            "obfs4proxy client",
            failed=_pt_error,
        )
        return int(line.rsplit(":", 1)[1])

    def close(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            close_pipes(self._process)
            self._process = None
        shutil.rmtree(self.state_dir, ignore_errors=True)
