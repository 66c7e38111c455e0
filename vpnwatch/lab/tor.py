"""The lab's Tor bridge, and Tor as its client: Debian's ``tor`` with ``obfs4proxy``.

:class:`TorBridgeServer` runs tor as a bridge relay (``BridgeRelay 1``) in a lab namespace,
with obfs4proxy as its server transport, exactly as a bridge operator configures one; nothing is
published and an nftables fence keeps tor's attempts to reach the directory authorities inside the
namespace. Its bridge line is read back the way an operator would hand it out: the ``cert=`` from
obfs4proxy's ``obfs4_bridgeline.txt``, the fingerprint from tor's ``fingerprint`` file.

:class:`TorClient` runs tor as a user does, ``UseBridges 1`` with one bridge line and obfs4proxy
as its client transport, so that tests can compare its verdict with the probe's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from vpnwatch.lab.netns import LabError, Namespace, stop_process
from vpnwatch.lab.obfs4 import BridgeIdentity, Obfs4Bridge, published_cert
from vpnwatch.lab.process import LabService, close_pipes, read_until

DEFAULT_PORT = 4460
DEFAULT_OR_PORT = 9101
OBFS4PROXY = "/usr/bin/obfs4proxy"
#: tor generates its RSA and Ed25519 keys on first start: a few seconds on a slow machine.
_STARTUP_SECONDS = 60.0
_FINGERPRINT = re.compile(r"^\S+ ([0-9A-F]{40})$")


def _tor_error(line: str) -> bool:
    return "[err]" in line


def _require(program: str, package: str) -> None:
    if shutil.which(program) is None:
        raise LabError(f"{program} is not installed (Debian package {package})")


class TorBridgeServer(LabService[Obfs4Bridge]):
    """tor as an obfs4 bridge in ``namespace``; stopped on exit or with the namespace."""

    def __init__(
        self,
        namespace: Namespace,
        *,
        port: int = DEFAULT_PORT,
        or_port: int = DEFAULT_OR_PORT,
        iat_mode: int = 0,
    ) -> None:
        self.namespace = namespace
        self.port = port
        self.or_port = or_port
        self.iat_mode = iat_mode
        self.directory = Path(tempfile.mkdtemp(prefix="vpnwatch-torbridge-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    def torrc(self) -> str:
        ip = self.namespace.ip
        return "\n".join(
            [
                f"DataDirectory {self.data_directory}",
                "BridgeRelay 1",
                f"Address {ip}",
                f"ORPort {ip}:{self.or_port} IPv4Only",
                "AssumeReachable 1",
                "PublishServerDescriptor 0",
                "SocksPort 0",
                "Nickname vpnwatchlab",
                "ContactInfo lab@vpnwatch.invalid",
                f"ServerTransportPlugin obfs4 exec {OBFS4PROXY}",
                f"ServerTransportListenAddr obfs4 {ip}:{self.port}",
                f"ServerTransportOptions obfs4 iat-mode={self.iat_mode}",
                "ExtORPort auto",
                "Log notice stdout",
                "",
            ]
        )

    def start(self) -> Obfs4Bridge:
        _require("tor", "tor")
        _require(OBFS4PROXY, "obfs4proxy")
        self.data_directory.mkdir(mode=0o700)
        torrc = self.directory / "torrc"
        torrc.write_text(self.torrc())
        self._fence()
        self._process = self.namespace.spawn(
            ["tor", "-f", str(torrc)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        read_until(
            self._process,
            lambda line: "Registered server transport 'obfs4'" in line,
            "tor bridge",
            failed=_tor_error,
            seconds=_STARTUP_SECONDS,
        )
        state = self.data_directory / "pt_state"
        return Obfs4Bridge(
            host=self.namespace.ip,
            port=self.port,
            cert=published_cert(state),
            iat_mode=self.iat_mode,
            identity=BridgeIdentity.from_state_dir(state),
            relay_fingerprint=self.fingerprint(),
        )

    def fingerprint(self) -> str:
        """The relay's RSA identity fingerprint, from the file tor writes beside its keys."""
        text = (self.data_directory / "fingerprint").read_text().strip()
        match = _FINGERPRINT.match(text)
        if match is None:
            raise LabError(f"{self.data_directory / 'fingerprint'} holds no fingerprint")
        return match.group(1)

    def _fence(self) -> None:
        """Nothing tor sends leaves the namespace except answers to this host's side of the link
        (the lab's probes): no directory authority, fallback or resolver is ever tried."""
        self.namespace.exec(
            ["nft", "-f", "-"],
            input_=(
                "table inet vpnwatch_tor_fence {\n"
                "  chain output {\n"
                "    type filter hook output priority 0; policy accept;\n"
                '    oifname "lo" accept\n'
                "    meta l4proto icmpv6 accept\n"
                f"    ip daddr {self.namespace.host_ip} accept\n"
                f"    ip6 daddr {self.namespace.host_ip6} accept\n"
                "    reject\n"
                "  }\n"
                "}\n"
            ),
        )

    def close(self) -> None:
        if self._process is not None:
            self.namespace.stop(self._process)
            close_pipes(self._process)
            self._process = None
            self.namespace.exec(
                ["nft", "delete", "table", "inet", "vpnwatch_tor_fence"], check=False
            )
        shutil.rmtree(self.directory, ignore_errors=True)


class TorClient(LabService["TorClient"]):
    """tor as a user runs it with one obfs4 bridge line, on this host; read its log with
    :meth:`wait_for`. No SOCKS port: nothing but the bridge is ever contacted."""

    def __init__(self, bridge_line: str) -> None:
        self.bridge_line = bridge_line
        self.directory = Path(tempfile.mkdtemp(prefix="vpnwatch-torclient-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> TorClient:
        _require("tor", "tor")
        data = self.directory / "data"
        data.mkdir(mode=0o700)
        torrc = self.directory / "torrc"
        torrc.write_text(
            "\n".join(
                [
                    f"DataDirectory {data}",
                    "UseBridges 1",
                    self.bridge_line,
                    f"ClientTransportPlugin obfs4 exec {OBFS4PROXY}",
                    "SocksPort 0",
                    "Log notice stdout",
                    "",
                ]
            )
        )
        self._process = subprocess.Popen(
            ["tor", "-f", str(torrc)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_for(self, pattern: str, seconds: float) -> str:
        """The first log line matching ``pattern``; LabError if none comes within ``seconds``."""
        if self._process is None:
            raise LabError("the tor client is not running")
        expression = re.compile(pattern)
        return read_until(
            self._process,
            lambda line: expression.search(line) is not None,
            "tor client",
            failed=_tor_error,
            seconds=seconds,
        )

    def close(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            close_pipes(self._process)
            self._process = None
        shutil.rmtree(self.directory, ignore_errors=True)
