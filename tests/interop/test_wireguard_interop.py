"""WireGuard interop: a real wireguard-go interface and ``vpnwatch check`` on the same wg-quick
file, against the same wireguard-go server, must give the same verdict.

The real client is what wg-quick does with the file: ``wg-quick strip`` drops the lines only
wg-quick reads, ``wg setconf`` configures a wireguard-go interface in the vantage namespace with
the rest, a persistent keepalive (``wg set``) makes it initiate at once, and ``wg show
latest-handshakes`` is its verdict: a handshake within two of its initiations, or none. vpnwatch
then checks the same file from the same namespace, through the same resolver (a dnsmasq this
module starts), after the real client's interface is gone (both hold the same key, and the server
keeps only the newer initiation of a key).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.conftest import (
    FILE_REFUSED,
    Verdict,
    Verdicts,
    assert_agree,
    run,
    run_cases,
    vpnwatch_check_files,
)
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.resolver import NamespaceResolver
from vpnwatch.lab.vantage import Vantage
from vpnwatch.lab.wireguard import CONTROL_DIR, KeyPair, WireGuardServer
from vpnwatch.targets.base import format_endpoint

pytestmark = pytest.mark.lab

#: What the real client gets: its first initiation, and the one wireguard-go sends 5 s later.
REAL_WAIT = 7.0
#: How long wireguard-go may take to create its interface on a busy machine.
STARTUP_SECONDS = 20.0
CHECK_TIMEOUT = 6.0
CLOSED_PORT = 51899
DROPPED_PORT = 51898
NAME_V4 = "wg.interop.test"
NAME_V6 = "wg6.interop.test"
NAME_GONE = "wg.gone.invalid"

Expected = dict[str, str | None]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class Lab:
    namespace: Namespace
    vantage: Namespace
    server: WireGuardServer
    directory: Path

    def endpoint(self, host: str | None = None, port: int | None = None) -> str:
        return format_endpoint(host or self.namespace.ip, port or self.server.port)

    def client(self, *, psk: bytes | None = None, known: bool = True) -> KeyPair:
        """A new client key, registered on the server (with ``psk``) unless ``known`` is False."""
        keys = KeyPair.generate()
        if known:
            self.server.add_peer(keys.public, psk)
        return keys

    def peer(
        self,
        *,
        server_key: str | None = None,
        psk: bytes | None = None,
        endpoint: str | None = None,
        extra: str = "",
    ) -> str:
        lines = ["[Peer]", f"PublicKey = {server_key or self.server.keys.public_b64}"]
        if psk is not None:
            lines.append(f"PresharedKey = {_b64(psk)}")
        lines += [
            f"AllowedIPs = {self.server.tunnel_address}/32",
            f"Endpoint = {endpoint or self.endpoint()}",
        ]
        return "\n".join(lines) + "\n" + extra

    def file(self, client: KeyPair, *peers: str, interface: str = "") -> str:
        head = f"[Interface]\nPrivateKey = {client.private_b64}\nAddress = 198.19.0.2/32\n"
        return head + interface + "".join(f"\n{peer}" for peer in peers)


Built = tuple[str, Expected]
CASES: dict[str, Callable[[Lab], Built]] = {}


def case(name: str) -> Callable[[Callable[[Lab], Built]], Callable[[Lab], Built]]:
    """Register a case; its name is the file's stem, so at most 15 characters (wg-quick)."""
    assert len(name) <= 15

    def register(build: Callable[[Lab], Built]) -> Callable[[Lab], Built]:
        CASES[name] = build
        return build

    return register


@case("plain")
def _plain(lab: Lab) -> Built:
    return lab.file(lab.client(), lab.peer()), {lab.endpoint(): None}


@case("psk")
def _psk(lab: Lab) -> Built:
    psk = os.urandom(32)
    return lab.file(lab.client(psk=psk), lab.peer(psk=psk)), {lab.endpoint(): None}


@case("psk-wrong")
def _psk_wrong(lab: Lab) -> Built:
    """The server answers (mac1 is over our key), but its reply fails with our PSK: auth."""
    client = lab.client(psk=os.urandom(32))
    return lab.file(client, lab.peer(psk=os.urandom(32))), {lab.endpoint(): "auth"}


@case("psk-missing")
def _psk_missing(lab: Lab) -> Built:
    return lab.file(lab.client(psk=os.urandom(32)), lab.peer()), {lab.endpoint(): "auth"}


@case("psk-unasked")
def _psk_unasked(lab: Lab) -> Built:
    return lab.file(lab.client(), lab.peer(psk=os.urandom(32))), {lab.endpoint(): "auth"}


@case("wrong-server")
def _wrong_server(lab: Lab) -> Built:
    """mac1 over the wrong server key: the server drops the initiation, silently."""
    peer = lab.peer(server_key=KeyPair.generate().public_b64)
    return lab.file(lab.client(), peer), {lab.endpoint(): "timeout"}


@case("unknown-client")
def _unknown_client(lab: Lab) -> Built:
    return lab.file(lab.client(known=False), lab.peer()), {lab.endpoint(): "timeout"}


@case("ipv6")
def _ipv6(lab: Lab) -> Built:
    endpoint = lab.endpoint(lab.namespace.ip6)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: None}


@case("ipv6-psk")
def _ipv6_psk(lab: Lab) -> Built:
    psk, endpoint = os.urandom(32), lab.endpoint(lab.namespace.ip6)
    return lab.file(lab.client(psk=psk), lab.peer(psk=psk, endpoint=endpoint)), {endpoint: None}


@case("name-v4")
def _name_v4(lab: Lab) -> Built:
    endpoint = lab.endpoint(NAME_V4)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: None}


@case("name-v6")
def _name_v6(lab: Lab) -> Built:
    """A name with only an AAAA record."""
    endpoint = lab.endpoint(NAME_V6)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: None}


@case("name-psk-wrong")
def _name_psk_wrong(lab: Lab) -> Built:
    endpoint = lab.endpoint(NAME_V4)
    client = lab.client(psk=os.urandom(32))
    return lab.file(client, lab.peer(psk=os.urandom(32), endpoint=endpoint)), {endpoint: "auth"}


@case("name-gone")
def _name_gone(lab: Lab) -> Built:
    """NXDOMAIN: ``wg setconf`` gives up on the file, vpnwatch says ``dns`` at ``resolve``."""
    endpoint = lab.endpoint(NAME_GONE)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: "dns"}


@case("closed-port")
def _closed_port(lab: Lab) -> Built:
    endpoint = lab.endpoint(port=CLOSED_PORT)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: "refused"}


@case("closed-port-v6")
def _closed_port_v6(lab: Lab) -> Built:
    endpoint = lab.endpoint(lab.namespace.ip6, CLOSED_PORT)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: "refused"}


@case("dropped")
def _dropped(lab: Lab) -> Built:
    """A firewall that drops everything to the port: no ICMP, no answer."""
    endpoint = lab.endpoint(port=DROPPED_PORT)
    return lab.file(lab.client(), lab.peer(endpoint=endpoint)), {endpoint: "timeout"}


@case("wg-quick-lines")
def _wg_quick_lines(lab: Lab) -> Built:
    """Every [Interface] line only wg-quick reads, and ListenPort, FwMark, PersistentKeepalive."""
    interface = (
        "Address = 198.19.0.3/32, 2001:2:ff::3/128\nDNS = 198.18.0.53, interop.test\n"
        "MTU = 1380\nTable = off\nPreUp = true\nPostUp = echo up\nPreDown = true\n"
        "PostDown = true\nSaveConfig = false\nListenPort = 51990\nFwMark = 0x5b\n"
    )
    peer = lab.peer(extra="PersistentKeepalive = 25\n")
    return lab.file(lab.client(), peer, interface=interface), {lab.endpoint(): None}


@case("multi-peer")
def _multi_peer(lab: Lab) -> Built:
    """Two peers, one of them the lab server: each endpoint has its own verdict."""
    closed = lab.endpoint(port=CLOSED_PORT)
    other = lab.peer(server_key=KeyPair.generate().public_b64, endpoint=closed)
    text = lab.file(lab.client(), lab.peer(), other)
    return text, {lab.endpoint(): None, closed: "refused"}


@case("odd-spacing")
def _odd_spacing(lab: Lab) -> Built:
    """Keys in any case, no spaces or tabs around '=', comments after values and on their own."""
    client = lab.client()
    text = (
        "# exported by a provider's app\n[interface]\n"
        f"privatekey={client.private_b64}   # ours\n\taddress\t=\t198.19.0.4/32\n\n"
        f"  [PEER]  # the lab\npublickey   =   {lab.server.keys.public_b64}\n"
        f"ALLOWEDIPS=0.0.0.0/0,::/0\n  endpoint = {lab.endpoint()}#no space\n"
    )
    return text, {lab.endpoint(): None}


@case("peer-dns")
def _peer_dns(lab: Lab) -> Built:
    """DNS under [Peer]: wg-quick passes it to ``wg setconf``, which refuses the file."""
    return lab.file(lab.client(), lab.peer(extra="DNS = 198.18.0.53\n")), {"": FILE_REFUSED}


def _peers(config: str) -> list[tuple[str, str]]:
    """(public key, endpoint) of each [Peer] of a config as ``wg setconf`` reads it."""
    peers: list[dict[str, str]] = []
    for raw in config.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.lower() == "[peer]":
            peers.append({})
        elif peers and "=" in line:
            key, _, value = line.partition("=")
            peers[-1][key.strip().lower()] = value.strip()
    return [(peer["publickey"], peer["endpoint"]) for peer in peers]


async def real_client(lab: Lab, path: Path, interface: str) -> Verdicts:
    """What wg-quick's client makes of the file: a handshake per peer, or none."""
    status, stripped, err = await run(["wg-quick", "strip", str(path)])
    if status != 0:
        return {"": Verdict(False, FILE_REFUSED, err.strip())}
    peers = _peers(stripped)
    device = await asyncio.create_subprocess_exec(
        *lab.vantage.argv(["env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", interface]),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        started = time.monotonic() + STARTUP_SECONDS
        while not (CONTROL_DIR / f"{interface}.sock").exists():
            assert device.returncode is None, "wireguard-go exited at start"
            assert time.monotonic() < started, f"wireguard-go made no {interface} socket"
            await asyncio.sleep(0.05)
        await run(lab.vantage.argv(["ip", "link", "set", interface, "up"]))
        status, _, err = await run(
            lab.vantage.argv(["wg", "setconf", interface, "/dev/stdin"]), input_=stripped
        )
        if status != 0:
            if "Name or service not known" in err:
                return {endpoint: Verdict(False, "dns", err.strip()) for _, endpoint in peers}
            return {"": Verdict(False, FILE_REFUSED, err.strip())}
        for key, _ in peers:
            await run(
                lab.vantage.argv(
                    ["wg", "set", interface, "peer", key, "persistent-keepalive", "25"]
                )
            )
        return await _handshakes(lab, interface, peers)
    finally:
        if device.returncode is None:
            device.terminate()
            await device.wait()


async def _handshakes(lab: Lab, interface: str, peers: list[tuple[str, str]]) -> Verdicts:
    """Poll ``wg show latest-handshakes`` until every peer has one or REAL_WAIT has passed."""
    deadline = time.monotonic() + REAL_WAIT
    while True:
        _, out, _ = await run(lab.vantage.argv(["wg", "show", interface, "latest-handshakes"]))
        times = dict(line.split("\t") for line in out.splitlines())
        done = {key for key, seconds in times.items() if seconds != "0"}
        if len(done) == len(peers) or time.monotonic() > deadline:
            return {
                endpoint: Verdict(key in done, detail=f"latest handshake {times.get(key)}")
                for key, endpoint in peers
            }
        await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with (
        Namespace() as namespace,
        WireGuardServer(namespace) as server,
        Vantage(namespace) as vantage,
        NamespaceResolver(vantage, {NAME_V4: [namespace.ip], NAME_V6: [namespace.ip6]}),
    ):
        namespace.exec(
            ["nft", "-f", "-"],
            input_=(
                "table inet vpnwatch_interop {\n  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f"    udp dport {DROPPED_PORT} drop\n  }}\n}}\n"
            ),
        )
        yield Lab(namespace, vantage, server, tmp_path_factory.mktemp("wireguard-interop"))


@pytest.fixture(scope="module")
def outcomes(lab: Lab) -> dict[str, tuple[Verdicts, Verdicts, Expected]]:
    """Every case at once: the real client's verdicts, vpnwatch's, and the expected ones.

    vpnwatch checks the files once every real client is gone: both hold the same keys, and a
    server keeps only the newest initiation of a key. Files expected to be refused are checked
    on their own, the others in one run, as a user would check them.
    """
    files: list[tuple[str, Path, Expected]] = []
    for name, build in CASES.items():
        text, expected = build(lab)  # registers the case's key on the server, so one at a time
        path = lab.directory / f"{name}.conf"
        path.write_text(text)
        path.chmod(0o600)
        files.append((name, path, expected))
    real = run_cases(
        enumerate(path for _, path, _ in files),
        lambda item: real_client(lab, item[1], f"vw{lab.namespace.slot}c{item[0]}"),
    )
    accepts = {path: "" not in expected for _, path, expected in files}
    checked = asyncio.run(vpnwatch_check_files(lab.vantage.argv, accepts, CHECK_TIMEOUT))
    return {
        name: (verdicts, checked[path], expected)
        for (name, path, expected), verdicts in zip(files, real, strict=True)
    }


@pytest.mark.parametrize("name", list(CASES))
def test_vpnwatch_agrees_with_the_real_client(
    outcomes: dict[str, tuple[Verdicts, Verdicts, Expected]], name: str
) -> None:
    real, checked, expected = outcomes[name]
    assert_agree(real, checked, expected)
