"""Real OpenVPN 2.6 servers in a lab namespace, their PKI, client configs, and the real client.

The PKI is generated with ``cryptography`` (a CA, a server certificate with the serverAuth usage,
a client certificate) and the static and tls-crypt-v2 keys with ``openvpn --genkey``, so every run
starts from fresh keys. :func:`run_real_client` runs the Debian ``openvpn`` client on the same
``.ovpn`` files the probe reads, without touching this host's interfaces or routes, so that tests
can demand that both agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpnwatch.lab.netns import LabError, Namespace, run
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.protocols.openvpn.wrappers import WrapKind
from vpnwatch.result import Failure

#: Server tunnels take their pools from 198.19.0.0/16 (the benchmarking range, like the lab).
POOL_PREFIX = "198.19"
POOL = f"{POOL_PREFIX}.0.0/16"
#: IPv6 pools, for servers given a ``server-ipv6`` line: out of WireGuard's 2001:2:0:1xx::/64.
POOL6 = "2001:2:0:fe00::/56"
SERVER_NAME = "vpnwatch-lab-server"
CLIENT_NAME = "vpnwatch-lab-client"
_STARTUP = 20.0
_READY = "Initialization Sequence Completed"
#: Lines after which the real client can no longer succeed, so waiting longer is pointless.
_CLIENT_FATAL = (
    "AUTH_FAILED",
    "VERIFY ERROR",
    "VERIFY X509NAME ERROR",
    "VERIFY KU ERROR",
    "VERIFY EKU ERROR",
    "Connection reset",
    "Connection refused",
    "ECONNREFUSED",
    "TLS_ERROR",
    "Exiting due to fatal error",
    "OPTIONS ERROR",
    "Pushed option rejected",
    "failed to negotiate cipher",
    "negotiated cipher not allowed",
    "tun-mtu is too large",
    "Cannot resolve host address",
    "SIGUSR1[soft,",
)


# -- PKI ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM text of a CA, a server certificate and key, and a client certificate and key."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def generate_pki(ca_name: str = "vpnwatch lab CA") -> Pki:
    """A fresh CA with one server (serverAuth) and one client (clientAuth) certificate."""
    ca = CertificateAuthority.create(ca_name)
    server = ca.issue(SERVER_NAME, server=True)
    client = ca.issue(CLIENT_NAME, server=False)
    return Pki(
        ca=ca.cert,
        server_cert=server.cert,
        server_key=server.key,
        client_cert=client.cert,
        client_key=client.key,
    )


def genkey(kind: str, path: Path, *extra: str) -> str:
    """``openvpn --genkey KIND PATH``; returns the file's text."""
    run(["openvpn", "--genkey", kind, str(path), *extra])
    return path.read_text()


# -- servers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerVariant:
    """One server configuration the lab can run."""

    name: str
    proto: str = "udp"
    wrap: WrapKind = "none"
    #: Username and password the server's verify script accepts instead of a client certificate
    #: (OpenVPN requires one of the two); None: the server requires a client certificate.
    credentials: tuple[str, str] | None = None
    #: More server directives, as written in a server config (``{dir}`` is the lab's directory).
    lines: tuple[str, ...] = ()
    #: Stems of the files (in the lab's directory) of the server's certificate and key, and of
    #: the CA it checks clients against.
    cert: str = "server"
    ca: str = "ca"
    #: Listen on the namespace's IPv6 address (udp6 / tcp6-server) instead of its IPv4 one.
    ipv6: bool = False
    #: A fixed port (two variants, udp and tcp, may share one); None: the next free one.
    port: int | None = None
    #: The body of an ``auth-user-pass-verify`` script (``$1`` is the credentials file,
    #: ``$auth_control_file`` the deferred-auth file); replaces the one ``credentials`` writes.
    verify_script: str | None = None
    #: Lines a user's ``.ovpn`` needs to match the server's (``data-ciphers AES-256-CBC``).
    client_data: tuple[str, ...] = ()
    #: False: the server drops whatever arrives through its tunnel device, as a server that
    #: answers handshakes but forwards nothing would.
    forwards: bool = True

    @property
    def requires_client_cert(self) -> bool:
        return self.credentials is None and self.verify_script is None


VARIANTS = (
    ServerVariant("udp-plain"),
    ServerVariant("udp-tls-auth", wrap="tls-auth"),
    ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
    ServerVariant("udp-tls-crypt-v2", wrap="tls-crypt-v2"),
    ServerVariant("udp-password", credentials=("probe", "lab-password-1")),
    ServerVariant("tcp-plain", proto="tcp"),
)


@dataclass(frozen=True)
class RunningServer:
    variant: ServerVariant
    host: str
    port: int
    #: The client's wrapping key file text (static key or tls-crypt-v2 client key), if any.
    client_wrap_key: str | None
    log: Path
    #: The server's own address inside its tunnel (its tun device's), which answers echoes.
    tunnel_address: str


class OpenVPNLab:
    """Runs :data:`VARIANTS` (or any others) inside ``namespace``, with files under ``workdir``."""

    def __init__(self, namespace: Namespace, workdir: Path, pki: Pki | None = None) -> None:
        self.namespace = namespace
        self.workdir = workdir
        self.pki = pki or generate_pki()
        self.servers: dict[str, RunningServer] = {}
        for name, text in (
            ("ca.crt", self.pki.ca),
            ("server.crt", self.pki.server_cert),
            ("server.key", self.pki.server_key),
        ):
            (workdir / name).write_text(text)
        (workdir / "server.key").chmod(0o600)
        self._static_key = genkey("secret", workdir / "static.key")
        genkey("tls-crypt-v2-server", workdir / "v2-server.key")

    def write_client_file(
        self, server: RunningServer, path: Path, *, ca: str | None = None
    ) -> Path:
        """The ``.ovpn`` a user of ``server`` holds: its CA (or ``ca``), the client certificate
        and key, and the server's wrapping key."""
        return write_ovpn(
            path,
            host=server.host,
            port=server.port,
            proto=server.variant.proto,
            ca=self.pki.ca if ca is None else ca,
            cert=self.pki.client_cert,
            key=self.pki.client_key,
            wrap=server.variant.wrap,
            wrap_key=server.client_wrap_key,
            extra=server.variant.client_data,
        )

    def start(self, variants: Sequence[ServerVariant] = VARIANTS, first_port: int = 1194) -> None:
        """Start each variant on its own port and wait until every one is ready."""
        guard_pools()
        pending = []
        for offset, variant in enumerate(variants):
            port = variant.port or first_port + offset
            index = len(self.servers)  # its pool and tun device, unique in this lab
            config, wrap_key = self._server_config(variant, port, index)
            path = self.workdir / f"{variant.name}.conf"
            path.write_text(config)
            log = self.workdir / f"{variant.name}.log"
            self.namespace.spawn(
                ["openvpn", "--config", str(path), "--log", str(log)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            host = self.namespace.ip6 if variant.ipv6 else self.namespace.ip
            address = f"{self._pool(index)}.1"
            server = RunningServer(variant, host, port, wrap_key, log, address)
            self.servers[variant.name] = server
            pending.append(server)
        deadline = time.monotonic() + _STARTUP
        for server in pending:
            while _READY not in _read(server.log):
                if time.monotonic() > deadline:
                    raise LabError(
                        f"openvpn {server.variant.name} did not start: {_read(server.log)[-2000:]}"
                    )
                time.sleep(0.1)
        for index, server in enumerate(pending, len(self.servers) - len(pending)):
            if not server.variant.forwards:
                self._drop_tunnel_traffic(tun_device(index))

    def _drop_tunnel_traffic(self, device: str) -> None:
        self.namespace.exec(
            ["nft", "-f", "-"],
            input_=(
                f"table inet vpnwatch_noforward_{device} {{\n"
                "  chain input {\n"
                "    type filter hook input priority 0;\n"
                f'    iifname "{device}" drop\n'
                "  }\n"
                "}\n"
            ),
        )

    def _pool(self, index: int) -> str:
        """The first three octets of the ``index``-th server's /24 pool. A WireGuard server in
        the same namespace takes 198.19.<slot>.0/24 (:mod:`vpnwatch.lab.wireguard`): skip it."""
        return f"{POOL_PREFIX}.{index + (index >= self.namespace.slot)}"

    def _server_config(
        self, variant: ServerVariant, port: int, index: int
    ) -> tuple[str, str | None]:
        directory = self.workdir
        family = "6" if variant.ipv6 else "4"
        lines = [
            f"server {self._pool(index)}.0 255.255.255.0",
            "topology subnet",
            "dev-type tun",
            f"dev {tun_device(index)}",
            f"proto {f'tcp{family}-server' if variant.proto == 'tcp' else f'udp{family}'}",
            f"local {self.namespace.ip6 if variant.ipv6 else self.namespace.ip}",
            f"port {port}",
            f"ca {directory / (variant.ca + '.crt')}",
            f"cert {directory / (variant.cert + '.crt')}",
            f"key {directory / (variant.cert + '.key')}",
            "dh none",
            "keepalive 10 60",
            "duplicate-cn",
            "verb 3",
        ]
        if not variant.requires_client_cert:
            lines.append("verify-client-cert none")
        wrap_key: str | None = None
        if variant.wrap == "tls-auth":
            lines.append(f"tls-auth {directory / 'static.key'} 0")
            wrap_key = self._static_key
        elif variant.wrap == "tls-crypt":
            lines.append(f"tls-crypt {directory / 'static.key'}")
            wrap_key = self._static_key
        elif variant.wrap == "tls-crypt-v2":
            lines.append(f"tls-crypt-v2 {directory / 'v2-server.key'}")
            client_key = directory / f"{variant.name}-v2-client.key"
            wrap_key = genkey(
                "tls-crypt-v2-client",
                client_key,
                "--tls-crypt-v2",
                str(directory / "v2-server.key"),
            )
        if variant.credentials is not None or variant.verify_script is not None:
            script = directory / f"{variant.name}-verify.sh"
            body = variant.verify_script
            if body is None:
                username, password = variant.credentials or ("", "")
                body = (
                    f'[ "$(sed -n 1p "$1")" = "{username}" ] &&\n'
                    f'[ "$(sed -n 2p "$1")" = "{password}" ]\n'
                )
            script.write_text("#!/bin/sh\n" + body)
            script.chmod(0o700)
            lines += ["script-security 2", f"auth-user-pass-verify {script} via-file"]
            lines.append(f"tmp-dir {directory}")
        lines += [line.format(dir=directory) for line in variant.lines]
        return "".join(f"{line}\n" for line in lines), wrap_key

    def inject_tcp_reset(self, port: int) -> None:
        """Answer every payload-carrying TCP segment to ``port`` with a reset, as a censor would."""
        self.namespace.exec(
            ["nft", "-f", "-"],
            input_=(
                "table inet vpnwatch_censor {\n"
                "  chain input {\n"
                "    type filter hook input priority 0;\n"
                f"    tcp dport {port} ct state established ip length > 64 reject with tcp reset\n"
                "  }\n"
                "}\n"
            ),
        )

    def clear_censor(self) -> None:
        self.namespace.exec(["nft", "delete", "table", "inet", "vpnwatch_censor"], check=False)


def tun_device(index: int) -> str:
    """The name of the ``index``-th server's tun device in its namespace."""
    return f"vwovpn{index}"


def guard_pools() -> None:
    """An ``unreachable`` route on this host for every server's pool (:data:`POOL`), so that no
    tunnel-inner address the lab hands out can leak by the default route. It stays when the lab
    goes: labs of other test runs may rely on it at the same time, and it routes nothing."""
    run(["ip", "route", "replace", "unreachable", POOL])
    run(["ip", "-6", "route", "replace", "unreachable", POOL6])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# -- client configs ------------------------------------------------------------------------------


def _inline(tag: str, text: str) -> str:
    return f"<{tag}>\n{text.strip()}\n</{tag}>\n"


def write_ovpn(
    path: Path,
    *,
    host: str,
    port: int,
    proto: str,
    ca: str,
    cert: str | None = None,
    key: str | None = None,
    wrap: WrapKind = "none",
    wrap_key: str | None = None,
    auth_user_pass: Path | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Write a client ``.ovpn`` as providers ship them: inline keys, ``client``, ``dev tun``."""
    text = "client\ndev tun\nnobind\npersist-key\n"
    text += f"proto {proto}\nremote {host} {port}\n"
    text += "remote-cert-tls server\n"
    text += "".join(f"{line}\n" for line in extra)
    if auth_user_pass is not None:
        text += f"auth-user-pass {auth_user_pass}\n"
    text += _inline("ca", ca)
    if cert is not None and key is not None:
        text += _inline("cert", cert) + _inline("key", key)
    if wrap != "none" and wrap_key is not None:
        if wrap == "tls-auth":
            text += "key-direction 1\n"
        text += _inline(wrap, wrap_key)
    path.write_text(text)
    path.chmod(0o600)
    return path


# -- the real client -----------------------------------------------------------------------------


#: What the real client logs, in the order looked for, and the failure vpnwatch reports for it
#: (the README's table "What the real client says"). A client that logged none of these before
#: giving up heard nothing valid: ``timeout``.
REAL_CLIENT_FAILURES: tuple[tuple[str, frozenset[Failure]], ...] = (
    ("Cannot resolve host address", frozenset({Failure.DNS})),
    ("AUTH_FAILED", frozenset({Failure.AUTH})),
    ("VERIFY ERROR", frozenset({Failure.TLS_CERT})),
    ("VERIFY X509NAME ERROR", frozenset({Failure.TLS_CERT})),
    ("VERIFY KU ERROR", frozenset({Failure.TLS_CERT})),
    ("VERIFY EKU ERROR", frozenset({Failure.TLS_CERT})),
    ("peer-fingerprint", frozenset({Failure.TLS_CERT})),
    ("OPTIONS ERROR", frozenset({Failure.PROTOCOL})),
    ("Pushed option rejected", frozenset({Failure.PROTOCOL})),
    ("failed to negotiate cipher", frozenset({Failure.PROTOCOL})),
    ("negotiated cipher not allowed", frozenset({Failure.PROTOCOL})),
    ("tun-mtu is too large", frozenset({Failure.PROTOCOL})),
    ("Connection refused", frozenset({Failure.REFUSED})),
    ("ECONNREFUSED", frozenset({Failure.REFUSED})),
    # OpenVPN says "reset" both for a RST and for a peer that closed the connection.
    ("Connection reset", frozenset({Failure.RESET, Failure.EOF})),
    ("Network is unreachable", frozenset({Failure.UNREACHABLE})),
    ("No route to host", frozenset({Failure.UNREACHABLE})),
    ("TLS_ERROR", frozenset({Failure.TLS})),
    ("TLS Error", frozenset({Failure.TLS})),
)


@dataclass(frozen=True)
class ClientOutcome:
    """What the real ``openvpn`` client reached: ``ok`` once it logged initialization complete."""

    ok: bool
    log: str

    @property
    def failures(self) -> frozenset[Failure]:
        """The failure classes vpnwatch may report for what this client logged."""
        for marker, failures in REAL_CLIENT_FAILURES:
            if marker in self.log:
                return failures
        return frozenset({Failure.TIMEOUT})


async def run_real_client(
    config: Path, timeout: float, prefix: Sequence[str] = ()
) -> ClientOutcome:
    """Run Debian's ``openvpn`` on ``config`` without a tunnel device, for at most ``timeout``.

    ``--dev null`` with ``--ifconfig-noexec``/``--route-noexec`` keeps it off this host's
    interfaces and routes; it stops as soon as it succeeded or logged a fatal error, or a
    restart (it would only try again). ``prefix`` runs it through another command (``ip netns
    exec NS``, to use a namespace's resolver).
    """
    options = ("--dev", "null", "--script-security", "1")
    async with _real_client(config, options, prefix) as proc:
        ok, log = await _connect(proc, timeout)
    return ClientOutcome(ok, log)


@contextlib.asynccontextmanager
async def _real_client(
    config: Path, options: Sequence[str], prefix: Sequence[str] = ()
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Debian's ``openvpn`` on ``config`` with ``options``, its log on stdout, never touching this
    host's addresses or routes and trying the server once; stopped when the block ends."""
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        "openvpn",
        "--config", str(config),
        *options,
        "--ifconfig-noexec",
        "--route-noexec",
        "--connect-retry-max", "1",
        "--verb", "3",
        cwd=config.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _connect(proc: asyncio.subprocess.Process, timeout: float) -> tuple[bool, str]:
    """Whether the client completed its initialization within ``timeout``, and its log so far:
    reading stops there, at a line after which it cannot succeed, or when it ends."""
    assert proc.stdout is not None
    lines: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while raw := await proc.stdout.readline():
                line = raw.decode(errors="replace")
                lines.append(line)
                if _READY in line:
                    return True, "".join(lines)
                if any(marker in line for marker in _CLIENT_FATAL):
                    break
    return False, "".join(lines)


@dataclass(frozen=True)
class PingOutcome:
    """What ``ping`` through the real client's tunnel saw: one round-trip time per reply."""

    connected: bool
    rtts: tuple[float, ...]
    log: str


_UP_SCRIPT = """#!/bin/sh
# OpenVPN's --up: move the tunnel device into the client's own namespace and address it there,
# so that this host's interfaces and routes never change.
set -e
ip link set "$dev" netns {namespace}
if [ -n "$ifconfig_netmask" ]; then  # topology subnet
    ip netns exec {namespace} ip addr add "$ifconfig_local/$ifconfig_netmask" dev "$dev"
else  # net30, p2p
    ip netns exec {namespace} ip addr add "$ifconfig_local" peer "$ifconfig_remote" dev "$dev"
fi
if [ -n "$ifconfig_ipv6_local" ]; then
    ip netns exec {namespace} ip -6 addr add "$ifconfig_ipv6_local/$ifconfig_ipv6_netbits" \
        dev "$dev" nodad
fi
ip netns exec {namespace} ip link set "$dev" up
ip netns exec {namespace} ip route add {pools} dev "$dev"
"""
_RTT = re.compile(r"time=([0-9.]+) ms")


async def ping_through_real_client(
    config: Path, address: str, *, device: str, count: int, interval: float, timeout: float
) -> PingOutcome:
    """Run Debian's ``openvpn`` on ``config`` with a real tun device and ``ping`` ``address``
    through it ``count`` times, every ``interval`` seconds.

    The client's ``--up`` script moves the device into a namespace of its own (named after
    ``device``, which must be unique among concurrent runs), so ping leaves from the tunnel
    address and nothing on this host changes; the namespace goes when the run ends.
    """
    namespace = f"{device}-client"
    script = config.parent / f"{device}-up.sh"
    script.write_text(_UP_SCRIPT.format(namespace=namespace, pools=POOL))
    script.chmod(0o700)
    run(["ip", "netns", "add", namespace])
    options = ("--dev", device, "--dev-type", "tun", "--script-security", "2", "--up", str(script))
    try:
        async with _real_client(config, options) as proc:
            connected, log = await _connect(proc, timeout)
            if not connected:
                return PingOutcome(False, (), log)
            ping = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", namespace,
                "ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", address,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await ping.communicate()
            text = output.decode(errors="replace")
            rtts = tuple(float(match) / 1000 for match in _RTT.findall(text))
            return PingOutcome(True, rtts, log + text)
    finally:
        run(["ip", "netns", "del", namespace], check=False)
