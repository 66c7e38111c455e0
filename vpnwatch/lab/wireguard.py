"""A real WireGuard server for the lab: Debian's wireguard-go inside a lab Namespace.

wireguard-go stands in for the kernel module (which this lab cannot count on) and speaks the same
protocol; ``wg`` configures it over its control socket. Keys never touch a command line: they are
handed to ``wg`` in files readable only by root, in a directory removed when the server stops.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vpnwatch.lab.netns import LabError, Namespace, run
from vpnwatch.lab.process import LabService
from vpnwatch.targets.base import format_endpoint
from vpnwatch.targets.wireguard import WireGuardTarget

#: wireguard-go's control sockets live here, in the one filesystem every namespace shares; so
#: interface names must be unique across labs, not only within a namespace.
CONTROL_DIR = Path("/var/run/wireguard")
DEFAULT_PORT = 51820
#: Peers with an IPv4 tunnel address: 198.19.<slot>.2 to .254.
IPV4_PEERS = 253
_STARTUP_SECONDS = 10.0
_POLL_SECONDS = 0.02


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair as WireGuard uses it; the private half stays out of ``repr``."""

    private: bytes = field(repr=False)
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        private = X25519PrivateKey.generate()
        return cls(private.private_bytes_raw(), private.public_key().public_bytes_raw())

    @property
    def private_b64(self) -> str:
        return _b64(self.private)

    @property
    def public_b64(self) -> str:
        return _b64(self.public)


def generate_preshared_key() -> bytes:
    return secrets.token_bytes(32)


@dataclass
class WireGuardServer(LabService["WireGuardServer"]):
    """wireguard-go listening on ``port`` in ``namespace``, with tunnel addresses in 198.19.0.0/16
    and 2001:2:0:1xx::/64.

    Use as a context manager: the process, its control socket and the key files are removed on
    exit, also when the body fails. ``stop`` and ``start`` restart it with the same keys, port and
    peers. Peers get tunnel addresses 198.19.<slot>.2, .3, ... and 2001:2:0:<0x100 + slot>::2,
    ::3, ... (all within 198.18.0.0/15 and 2001:2::/48, reserved for benchmarking), and this host
    gets ``unreachable`` routes for both pools while the server runs: nothing meant for the
    inside of a lab tunnel can leave by the default route.
    """

    namespace: Namespace
    port: int = DEFAULT_PORT
    keys: KeyPair = field(default_factory=KeyPair.generate)
    _peers: dict[bytes, bytes | None] = field(default_factory=dict, init=False, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _private_dir: tempfile.TemporaryDirectory[str] | None = field(
        default=None, init=False, repr=False
    )

    @property
    def interface(self) -> str:
        return f"vwwg{self.namespace.slot}"

    @property
    def public_key(self) -> bytes:
        return self.keys.public

    @property
    def tunnel_address(self) -> str:
        return f"198.19.{self.namespace.slot}.1"

    @property
    def tunnel_address6(self) -> str:
        return f"{self._pool6}::1"

    @property
    def tunnel_pools(self) -> tuple[str, str]:
        """The tunnel's address pools, which this host routes nowhere."""
        return f"198.19.{self.namespace.slot}.0/24", f"{self._pool6}::/64"

    @property
    def _pool6(self) -> str:
        return f"2001:2:0:{0x100 + self.namespace.slot:x}"

    @property
    def control_socket(self) -> Path:
        return CONTROL_DIR / f"{self.interface}.sock"

    def endpoint(self, *, ipv6: bool = False) -> str:
        """The server's ``host:port`` (``[v6]:port``) as seen from this host."""
        return format_endpoint(self.namespace.ip6 if ipv6 else self.namespace.ip, self.port)

    def start(self) -> WireGuardServer:
        """Start wireguard-go and configure it with the server's keys, port and every peer."""
        if self._process is not None:
            raise LabError(f"{self.interface} is already running")
        with self._private_path("wireguard-go.log").open("wb") as log:
            self._process = self.namespace.spawn(
                ["env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", self.interface],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_for_control_socket()
        self._wg(
            "set",
            self.interface,
            "listen-port",
            str(self.port),
            "private-key",
            self._secret_file("server", self.keys.private),
        )
        for public_key, preshared_key in self._peers.items():
            self._configure_peer(public_key, preshared_key)
        self.namespace.exec(
            ["ip", "addr", "add", f"{self.tunnel_address}/24", "dev", self.interface]
        )
        self.namespace.exec(
            ["ip", "addr", "add", f"{self.tunnel_address6}/64", "dev", self.interface, "nodad"]
        )
        self.namespace.exec(["ip", "link", "set", self.interface, "up"])
        for pool in self.tunnel_pools:
            run(["ip", "route", "replace", "unreachable", pool])
        return self

    def stop(self) -> None:
        """Stop wireguard-go (its interface goes with it) and remove its control socket."""
        process, self._process = self._process, None
        if process is not None:
            self.namespace.stop(process)
        for pool in self.tunnel_pools:
            run(["ip", "route", "del", "unreachable", pool], check=False)
        self.control_socket.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop and remove the key files; ``start`` would write them afresh."""
        self.stop()
        if self._private_dir is not None:
            self._private_dir.cleanup()
            self._private_dir = None

    def add_peer(self, public_key: bytes, preshared_key: bytes | None = None) -> str:
        """Allow a client key (optionally with a preshared key); returns its tunnel address."""
        self._peers[public_key] = preshared_key
        if self._process is not None:
            self._configure_peer(public_key, preshared_key)
        return self.peer_address(public_key)

    @property
    def peers(self) -> tuple[bytes, ...]:
        """The public keys of the clients the server accepts, in the order they were added."""
        return tuple(self._peers)

    def peer_address(self, public_key: bytes, *, ipv6: bool = False) -> str:
        return self._pool_address(list(self._peers).index(public_key), ipv6=ipv6)

    def tunnel_addresses(self, public_key: bytes) -> tuple[str, ...]:
        """The peer's tunnel addresses as prefixes: what the server routes to it (AllowedIPs)
        and what its client's file says (Address)."""
        v4, v6 = (self.peer_address(public_key, ipv6=v6) for v6 in (False, True))
        return f"{v4}/32", f"{v6}/128"

    def _pool_address(self, index: int, *, ipv6: bool) -> str:
        """The ``index``-th peer's address in the pools (IPv4: the first 253 peers only)."""
        if ipv6:
            return f"{self._pool6}::{index + 2:x}"
        if index >= IPV4_PEERS:
            raise LabError(f"a lab WireGuard server has IPv4 addresses for {IPV4_PEERS} peers")
        return f"198.19.{self.namespace.slot}.{index + 2}"

    def latest_handshake(self, public_key: bytes) -> int:
        """Unix time of the peer's last completed handshake, 0 if none (as ``wg show`` says)."""
        output = self._wg("show", self.interface, "latest-handshakes")
        wanted = _b64(public_key)
        for line in output.splitlines():
            key, _, seconds = line.partition("\t")
            if key == wanted:
                return int(seconds)
        raise LabError(f"{self.interface} has no peer {wanted}")

    def client_config(
        self, client: KeyPair, *, preshared_key: bytes | None = None, ipv6: bool = False
    ) -> str:
        """A wg-quick ``.conf`` for ``client``, as a user of this server would hold it.

        ``preshared_key`` defaults to the one the server holds for ``client``. A client the server
        does not know gets a file all the same (without ``Address``), to test that it is ignored.
        """
        if preshared_key is None:
            preshared_key = self._peers.get(client.public)
        lines = ["[Interface]", f"PrivateKey = {client.private_b64}"]
        if client.public in self._peers:
            lines.append(f"Address = {', '.join(self.tunnel_addresses(client.public))}")
        lines += ["", "[Peer]", f"PublicKey = {self.keys.public_b64}"]
        if preshared_key is not None:
            lines.append(f"PresharedKey = {_b64(preshared_key)}")
        lines += [
            f"AllowedIPs = {self.tunnel_address}/32, {self.tunnel_address6}/128",
            f"Endpoint = {self.endpoint(ipv6=ipv6)}",
            "",
        ]
        return "\n".join(lines)

    def client_target(self, name: str, *, tunnel: bool = False) -> WireGuardTarget:
        """The target of a new client key the server accepts. With ``tunnel`` it also knows its
        tunnel address and the server's, so that a tunnel test can run through it."""
        client = KeyPair.generate()
        source = self.add_peer(client.public)
        return WireGuardTarget(
            name=name,
            host=self.namespace.ip,
            port=self.port,
            private_key=client.private_b64,
            public_key=self.keys.public_b64,
            address=(ipaddress.ip_interface(f"{source}/32"),) if tunnel else (),
            ping=ipaddress.ip_address(self.tunnel_address) if tunnel else None,
        )

    def _configure_peer(self, public_key: bytes, preshared_key: bytes | None) -> None:
        argv = ["set", self.interface, "peer", _b64(public_key)]
        if preshared_key is not None:
            argv += ["preshared-key", self._secret_file(_b64(public_key), preshared_key)]
        argv += ["allowed-ips", ",".join(self.tunnel_addresses(public_key))]
        self._wg(*argv)

    def _private_path(self, name: str) -> Path:
        """A path in the server's own directory, which only its owner can read (mkdtemp: 0700)."""
        if self._private_dir is None:
            self._private_dir = tempfile.TemporaryDirectory(prefix="vpnwatch-wg-")
        return Path(self._private_dir.name) / name.replace("/", "_")

    def _secret_file(self, name: str, raw: bytes) -> str:
        """Write a key where ``wg`` reads it, so that it never appears on a command line."""
        path = self._private_path(name)
        path.write_text(_b64(raw) + "\n")
        path.chmod(0o600)
        return str(path)

    def _wg(self, *argv: str) -> str:
        return self.namespace.exec(["wg", *argv])

    def _wait_for_control_socket(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not self.control_socket.exists():
            if self._process.poll() is not None:
                log = self._private_path("wireguard-go.log").read_text(errors="replace")
                raise LabError(f"wireguard-go exited at start: {log.strip()}")
            if time.monotonic() > deadline:
                raise LabError(f"wireguard-go made no control socket in {_STARTUP_SECONDS} s")
            time.sleep(_POLL_SECONDS)
