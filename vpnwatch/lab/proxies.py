"""The lab's circumvention proxies: shadowsocks-libev with simple-obfs and v2ray-plugin, and trojan.

Everything runs inside a lab namespace, as the Debian packages ship it: ``ss-server`` once per
cipher and once per plugin mode (``obfs-server``, ``ss-v2ray-plugin`` started by ss-server
through SIP003, as operators run them), and ``trojan`` in server mode with a fallback web site.
Behind them stands the destination every probe asks for: a web server answering
``/generate_204`` and an echo service, on an address of the namespace's own (198.18.<slot>.80)
that this host cannot reach — an ``unreachable`` route guards it — so that only a request
relayed by a proxy can get there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from vpnwatch.lab.controls import wait_listening
from vpnwatch.lab.netns import LabError, Namespace, run
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.lab.process import ECHO_HANDLER
from vpnwatch.protocols.relayed import Destination, encode_address
from vpnwatch.targets.shadowsocks import ShadowsocksTarget
from vpnwatch.targets.trojan import TrojanTarget

CIPHERS = ("chacha20-ietf-poly1305", "aes-256-gcm", "aes-128-gcm")
HTTP_PORT, ECHO_PORT, FALLBACK_PORT = 80, 7, 8080
#: ss-server ports: one per cipher, then one per plugin mode (chacha20 behind each plugin).
CIPHER_PORTS = dict(zip(CIPHERS, (8388, 8389, 8390), strict=True))
PLUGIN_PORTS = {"obfs-http": 8391, "obfs-tls": 8392, "v2ray-ws": 8393, "v2ray-wss": 8394}
TROJAN_PORT = 9443
OBFS_HOST = "www.vpnwatch.test"
WS_HOST = "cdn.vpnwatch.test"
WS_PATH = "/ws"
TROJAN_NAME = "trojan.vpnwatch.test"
#: What the fallback site serves a browser; Trojan's wrong password gets this site.
FALLBACK_PAGE = b"<html><body>an ordinary web site</body></html>"

# The destination and the fallback site run as one interpreter in the namespace, so that the lab
# needs no web server package; it prints "ready" once every socket listens.
_BACKENDS = (
    """
import asyncio, sys
destination, fallback_page = sys.argv[1], sys.argv[2].encode()
"""
    + ECHO_HANDLER
    + """
def http(answer):
    async def serve(reader, writer):
        try:
            line = await reader.readline()
            words = line.split()
            if len(words) == 3 and words[2].startswith(b"HTTP/"):  # else answer at once, as nginx
                while (header := await reader.readline()) not in (b"\\r\\n", b"\\n", b""):
                    pass
            writer.write(answer(line))
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
    return serve

def destination_answer(line):
    if line.split(b" ")[1:2] == [b"/generate_204"]:
        return b"HTTP/1.1 204 No Content\\r\\nConnection: close\\r\\n\\r\\n"
    return b"HTTP/1.1 404 Not Found\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n"

def fallback_answer(line):
    words = line.split()
    if len(words) != 3 or not words[2].startswith(b"HTTP/"):
        return b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n"
    head = f"HTTP/1.1 200 OK\\r\\nContent-Length: {len(fallback_page)}\\r\\n\\r\\n"
    return head.encode() + fallback_page

async def main():
    echo_port, http_port, fallback_port = map(int, sys.argv[3:6])
    await asyncio.start_server(echo, destination, echo_port)
    await asyncio.start_server(http(destination_answer), destination, http_port)
    await asyncio.start_server(http(fallback_answer), "127.0.0.1", fallback_port)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
)


@dataclass(frozen=True)
class ShadowsocksServer:
    """One ss-server as its operator would publish it."""

    host: str
    port: int
    method: str
    password: str = field(repr=False)
    #: The SIP003 ``plugin`` and ``plugin-opts`` a client needs, or "" for none.
    plugin: str = ""
    plugin_opts: str = ""

    def link(
        self,
        name: str = "lab",
        *,
        method: str | None = None,
        password: str | None = None,
        plugin: str | None = None,
    ) -> str:
        """The SIP002 link its operator publishes (``plugin``: "" for none, or ``name;opts``)."""
        userinfo = f"{method or self.method}:{password or self.password}".encode()
        link = f"ss://{base64.urlsafe_b64encode(userinfo).decode().rstrip('=')}"
        plugin = f"{self.plugin};{self.plugin_opts}" if plugin is None and self.plugin else plugin
        query = f"?plugin={quote(plugin)}" if plugin else ""
        return f"{link}@{self.host}:{self.port}/{query}#{quote(name)}"

    def target(self, name: str, destination: str, *, ca: str | None = None) -> ShadowsocksTarget:
        """The probe's target for this server, asking for ``destination`` through it; ``ca``
        verifies a TLS plugin's certificate."""
        return ShadowsocksTarget.model_validate(
            {
                "name": name,
                "host": self.host,
                "port": self.port,
                "method": self.method,
                "password": self.password,
                "plugin": self.plugin,
                "plugin_opts": self.plugin_opts,
                "destination": destination,
                "ca": ca,
            }
        )


@dataclass(frozen=True)
class TrojanServer:
    host: str
    port: int
    password: str = field(repr=False)
    server_name: str
    ca: str  # PEM of the lab CA that issued the server's certificate

    def link(
        self, name: str = "lab", *, password: str | None = None, sni: str | None = None
    ) -> str:
        """The ``trojan://`` link its operator publishes."""
        secret = quote(password or self.password, safe="")
        query = f"security=tls&type=tcp&sni={sni or self.server_name}"
        return f"trojan://{secret}@{self.host}:{self.port}?{query}#{quote(name)}"


@dataclass(frozen=True)
class ProxyLab:
    """The running proxies and where their destination is."""

    destination: str
    shadowsocks: dict[str, ShadowsocksServer]
    trojan: TrojanServer
    directory: Path

    @property
    def generate_204(self) -> str:
        return f"http://{self.destination}/generate_204"

    @property
    def echo(self) -> str:
        return f"echo://{self.destination}:{ECHO_PORT}"

    def links(self) -> str:
        """A subscription of the lab's proxies, one of each kind, as a provider serves it."""
        chosen = ("chacha20-ietf-poly1305", "obfs-tls", "v2ray-wss")
        links = [self.shadowsocks[name].link(f"ss-{name}") for name in chosen]
        return "\n".join([*links, self.trojan.link("trojan-lab")]) + "\n"


def destination_address(namespace: Namespace) -> str:
    return f"198.18.{namespace.slot}.80"


@contextmanager
def proxy_lab(namespace: Namespace) -> Iterator[ProxyLab]:
    """Every proxy of the lab in ``namespace``; the destination's host route removed on exit."""
    for program in ("ss-server", "obfs-server", "ss-v2ray-plugin", "trojan"):
        if shutil.which(program) is None:
            raise LabError(f"{program} is not installed (see scripts/apt-packages.txt)")
    directory = Path(tempfile.mkdtemp(prefix="vpnwatch-proxies-"))
    destination = destination_address(namespace)
    run(["ip", "route", "replace", "unreachable", f"{destination}/32"])
    try:
        namespace.exec(["ip", "addr", "add", f"{destination}/32", "dev", "lo"])
        _start_backends(namespace, destination)
        ca = CertificateAuthority.create("vpnwatch proxies lab CA")
        servers = _start_shadowsocks(namespace, ca, directory)
        trojan = _start_trojan(namespace, ca, directory)
        for port in [*CIPHER_PORTS.values(), *PLUGIN_PORTS.values(), TROJAN_PORT]:
            wait_listening(namespace, port, "tcp")
        yield ProxyLab(destination, servers, trojan, directory)
    finally:
        run(["ip", "route", "del", "unreachable", f"{destination}/32"], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def _start_backends(namespace: Namespace, destination: str) -> None:
    proc = namespace.spawn(
        [
            sys.executable,
            "-c",
            _BACKENDS,
            destination,
            FALLBACK_PAGE.decode(),
            *map(str, (ECHO_PORT, HTTP_PORT, FALLBACK_PORT)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise LabError("the proxies' destination did not start")


def _ss_server(
    namespace: Namespace, port: int, method: str, plugin: str = "", opts: str = ""
) -> ShadowsocksServer:
    password = secrets.token_urlsafe(12)
    argv = ["ss-server", "-s", namespace.ip, "-p", str(port), "-k", password, "-m", method]
    if plugin:
        argv += ["--plugin", plugin, "--plugin-opts", opts]
    namespace.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ShadowsocksServer(namespace.ip, port, method, password)


def _start_shadowsocks(
    namespace: Namespace, ca: CertificateAuthority, directory: Path
) -> dict[str, ShadowsocksServer]:
    servers = {method: _ss_server(namespace, port, method) for method, port in CIPHER_PORTS.items()}
    cert, key = ca.issue(WS_HOST, server=True, sans=(WS_HOST,)).write(directory, "v2ray")
    (directory / "ca.crt").write_text(ca.cert)
    method = CIPHERS[0]
    # name → (server plugin, its options, the client's SIP003 plugin and options)
    plugins = {
        "obfs-http": ("obfs-server", "obfs=http", "obfs-local", f"obfs=http;obfs-host={OBFS_HOST}"),
        "obfs-tls": ("obfs-server", "obfs=tls", "obfs-local", f"obfs=tls;obfs-host={OBFS_HOST}"),
        "v2ray-ws": (
            "ss-v2ray-plugin", f"server;host={WS_HOST};path={WS_PATH}",
            "v2ray-plugin", f"host={WS_HOST};path={WS_PATH}",
        ),
        "v2ray-wss": (
            "ss-v2ray-plugin", f"server;tls;host={WS_HOST};path={WS_PATH};cert={cert};key={key}",
            "v2ray-plugin", f"tls;host={WS_HOST};path={WS_PATH}",
        ),
    }  # fmt: skip
    for name, (server_plugin, server_opts, plugin, opts) in plugins.items():
        server = _ss_server(namespace, PLUGIN_PORTS[name], method, server_plugin, server_opts)
        servers[name] = ShadowsocksServer(
            server.host, server.port, method, server.password, plugin, opts
        )
    return servers


def _start_trojan(namespace: Namespace, ca: CertificateAuthority, directory: Path) -> TrojanServer:
    cert, key = ca.issue(TROJAN_NAME, server=True, sans=(TROJAN_NAME, namespace.ip)).write(
        directory, "trojan"
    )
    password = secrets.token_urlsafe(12)
    config = {
        "run_type": "server",
        "local_addr": namespace.ip,
        "local_port": TROJAN_PORT,
        "remote_addr": "127.0.0.1",
        "remote_port": FALLBACK_PORT,
        "password": [password],
        "log_level": 2,
        "ssl": {"cert": str(cert), "key": str(key), "alpn": ["http/1.1"]},
    }
    path = directory / "trojan-server.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    namespace.spawn(
        ["trojan", "-c", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return TrojanServer(namespace.ip, TROJAN_PORT, password, TROJAN_NAME, ca.cert)


#: The Debian binary of each plugin a link may name.
_PLUGIN_BINARIES = {"obfs-local": "obfs-local", "simple-obfs": "obfs-local"} | {
    name: "ss-v2ray-plugin" for name in ("v2ray-plugin", "ss-v2ray-plugin")
}


#: What the real client's SOCKS connection gave when it closed without a byte of the answer.
NO_ANSWER = "no answer"


async def real_client_check(
    target: ShadowsocksTarget | TrojanTarget, timeout: float
) -> tuple[bool, str]:
    """What the real client says of ``target``: ``ss-local`` (with the same SIP003 plugin) or
    ``trojan`` in client mode, asked through its SOCKS5 port for the target's destination.

    The verdict is the same check a user's browser makes: the destination's own answer (HTTP
    status, or the echo) came back through the proxy. Returns (ok, what happened).
    """
    directory = Path(tempfile.mkdtemp(prefix="vpnwatch-realclient-"))
    port = _free_port()
    argv = _real_client_argv(target, port, directory)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            while True:
                ok, said = await _through_socks(port, target.relay_destination)
                if ok or said != NO_ANSWER:
                    return ok, said
                # ss-local listens before its plugin does, and closes what it cannot pass on
                # unanswered: a user's second try, a moment later, is the client's verdict.
                await asyncio.sleep(0.1)
    except TimeoutError:
        return False, f"no answer through {argv[0]} within {timeout:g} s"
    except OSError as exc:
        return False, f"{argv[0]}: {exc}"
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _real_client_argv(
    target: ShadowsocksTarget | TrojanTarget, port: int, directory: Path
) -> list[str]:
    if isinstance(target, TrojanTarget):
        ca = directory / "ca.crt"
        ca.write_text(target.ca or "")
        config = {
            "run_type": "client",
            "local_addr": "127.0.0.1",
            "local_port": port,
            "remote_addr": target.host,
            "remote_port": target.port,
            "password": [target.password.get_secret_value()],
            "log_level": 2,
            "ssl": {
                "verify": True,
                "verify_hostname": True,
                "cert": str(ca) if target.ca else "",
                "sni": target.server_name or target.host,
            },
        }
        path = directory / "trojan-client.json"
        path.write_text(json.dumps(config))
        return ["trojan", "-c", str(path)]
    argv = [
        "ss-local", "-s", target.host, "-p", str(target.port), "-b", "127.0.0.1",
        "-l", str(port), "-m", target.method, "-k", target.password.get_secret_value(),
    ]  # fmt: skip
    if target.plugin:
        opts = target.plugin_opts
        if (
            target.ca
            and target.plugin_mode is not None
            and target.plugin_mode.kind == "websocket-tls"
        ):
            ca = directory / "ca.crt"
            ca.write_text(target.ca)
            opts += f";cert={ca}"
        argv += [
            "--plugin",
            _PLUGIN_BINARIES.get(target.plugin, target.plugin),
            "--plugin-opts",
            opts,
        ]
    return argv


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _through_socks(port: int, destination: Destination) -> tuple[bool, str]:
    """SOCKS5 CONNECT through the client, then the request; the destination's answer judged."""
    for _ in range(200):  # the client starts listening asynchronously
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0.025)
    else:
        return False, "the real client never listened"
    try:
        writer.write(b"\x05\x01\x00")
        if await reader.readexactly(2) != b"\x05\x00":
            return False, "the real client refused the SOCKS greeting"
        writer.write(b"\x05\x01\x00" + encode_address(destination.host, destination.port))
        reply = await reader.readexactly(4)
        if reply[1] != 0:
            return False, f"the real client answered SOCKS error {reply[1]}"
        bound_address = {1: 4, 4: 16}.get(reply[3], 0)  # ss-local and trojan answer IPv4
        await reader.readexactly(bound_address + 2)
        if destination.kind == "echo":
            payload = os.urandom(1024)
            writer.write(payload)
            echoed = await reader.read(len(payload))
            while echoed and len(echoed) < len(payload):
                more = await reader.read(len(payload) - len(echoed))
                if not more:
                    break
                echoed += more
            return echoed == payload, f"{len(echoed)} bytes came back"
        writer.write(
            f"GET {destination.path} HTTP/1.1\r\nHost: {destination.host}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status = await reader.readline()
        expected = f"HTTP/1.1 {destination.status} ".encode()
        return status.startswith(expected), status.decode("ascii", "replace").strip() or NO_ANSWER
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        return False, f"the real client closed the connection ({type(exc).__name__})"
    finally:
        writer.close()
