"""Shadowsocks (with simple-obfs and v2ray-plugin) and Trojan against the real servers, and the
real clients (``ss-local`` with the same plugin, ``trojan`` in client mode) on every case.

Targets come from the links an operator would publish, through the importer. Each case states
the verdict it must give; vpnwatch's probe and the real client run side by side and must agree
on ok or not. Censor cases run one at a time (the censor enforces one policy); the rest at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vpnwatch.importers import import_file
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.proxies import (
    OBFS_HOST,
    WS_HOST,
    WS_PATH,
    ProxyLab,
    proxy_lab,
    real_client_check,
)
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.shadowsocks import SHADOWSOCKS, shadowsocks_client
from vpnwatch.probes.trojan import TROJAN
from vpnwatch.result import Failure, Result
from vpnwatch.targets.shadowsocks import ShadowsocksTarget
from vpnwatch.targets.trojan import TrojanTarget

pytestmark = pytest.mark.lab

OK_TIMEOUT = 5.0
FAIL_TIMEOUT = 2.0
Target = ShadowsocksTarget | TrojanTarget


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Namespace, ProxyLab]]:
    with Namespace() as namespace, proxy_lab(namespace) as running:
        yield namespace, running


def imported(
    write: Callable[[str, str], Path], link: str, lab: ProxyLab, **changes: object
) -> Target:
    [target] = import_file(write("lab.links", link + "\n")).targets
    assert isinstance(target, ShadowsocksTarget | TrojanTarget)
    update = {"destination": lab.generate_204, "ca": lab.trojan.ca, **changes}
    return target.model_copy(update=update)


@dataclass(frozen=True)
class Case:
    """A lab case: the link, what vpnwatch must say, and whether a censor is involved."""

    link: Callable[[ProxyLab], str]
    expect: tuple[Failure, str] | None  # None: ok (stage data)
    changes: dict[str, object] | None = None
    timeout: float = FAIL_TIMEOUT


def _ss(server: str, **alter: str) -> Callable[[ProxyLab], str]:
    return lambda lab: lab.shadowsocks[server].link(**alter)


CASES: dict[str, Case] = {
    **{
        f"ok {name}": Case(_ss(name), None, timeout=OK_TIMEOUT)
        for name in (
            "chacha20-ietf-poly1305",
            "aes-256-gcm",
            "aes-128-gcm",
            "obfs-http",
            "obfs-tls",
            "v2ray-ws",
            "v2ray-wss",
        )
    },
    "ok aes-256-gcm echo": Case(_ss("aes-256-gcm"), None, {"destination": "echo"}, OK_TIMEOUT),
    "ok trojan": Case(lambda lab: lab.trojan.link(), None, timeout=OK_TIMEOUT),
    "ok trojan echo": Case(
        lambda lab: lab.trojan.link(), None, {"destination": "echo"}, OK_TIMEOUT
    ),
    # ss-libev resists active probing: a chunk that does not open gets silence, not a close.
    "wrong password": Case(_ss("aes-128-gcm", password="not-it"), (Failure.TIMEOUT, "data")),
    "wrong cipher": Case(
        _ss("chacha20-ietf-poly1305", method="aes-128-gcm"), (Failure.TIMEOUT, "data")
    ),
    # obfs-server passes what is not its disguise through unchanged: our fake ClientHello
    # reaches ss-server as a salt that opens nothing, and it stays silent.
    "obfs=tls to an obfs=http server": Case(
        _ss("obfs-http", plugin=f"obfs-local;obfs=tls;obfs-host={OBFS_HOST}"),
        (Failure.TIMEOUT, "data"),
    ),
    "wrong websocket path": Case(
        _ss("v2ray-ws", plugin=f"v2ray-plugin;host={WS_HOST};path=/elsewhere"),
        (Failure.PROTOCOL, "websocket"),
    ),
    "websocket without TLS to a TLS server": Case(
        _ss("v2ray-wss", plugin=f"v2ray-plugin;host={WS_HOST};path={WS_PATH}"),
        (Failure.PROTOCOL, "websocket"),
    ),
    "closed port": Case(_ss("aes-128-gcm"), (Failure.REFUSED, "connect"), {"port": 8999}),
    "trojan wrong password": Case(
        lambda lab: lab.trojan.link(password="not-it"), (Failure.AUTH, "data")
    ),
    "trojan wrong name": Case(
        lambda lab: lab.trojan.link(sni="other.vpnwatch.test"), (Failure.TLS_CERT, "tls")
    ),
}


def resolved(case: Case, lab: ProxyLab, write: Callable[[str, str], Path]) -> Target:
    changes = dict(case.changes or {})
    if changes.get("destination") == "echo":
        changes["destination"] = lab.echo
    return imported(write, case.link(lab), lab, **changes)


async def judged(
    target: Target, timeout: float, spec: ProbeSpec | None = None
) -> tuple[Result, bool, str]:  # type: ignore[type-arg]
    spec = spec or (SHADOWSOCKS if isinstance(target, ShadowsocksTarget) else TROJAN)
    result, (real_ok, real_said) = await asyncio.gather(
        spec.probe()(target, timeout), real_client_check(target, timeout + 1)
    )
    return result, real_ok, real_said


def check(
    name: str, case_expect: tuple[Failure, str] | None, result: Result, real_ok: bool, said: str
) -> None:
    stages = [stage for stage, _ in result.stages]
    if case_expect is None:
        assert result.ok and result.stage == "data" and stages[-1] == "data", (name, result)
    else:
        assert (result.failure, result.stage) == case_expect, (name, result)
        assert "data" not in stages
    assert real_ok == result.ok, f"{name}: the real client says {said!r}, vpnwatch {result}"


async def test_every_case_against_the_real_servers_and_clients(
    lab: tuple[Namespace, ProxyLab], write: Callable[[str, str], Path]
) -> None:
    _, running = lab
    targets = {name: resolved(case, running, write) for name, case in CASES.items()}
    outcomes = await asyncio.gather(
        *(judged(targets[name], case.timeout) for name, case in CASES.items())
    )
    for (name, case), (result, real_ok, said) in zip(CASES.items(), outcomes, strict=True):
        check(name, case.expect, result, real_ok, said)


def test_plain_shadowsocks_to_an_obfs_server_works(
    lab: tuple[Namespace, ProxyLab], write: Callable[[str, str], Path]
) -> None:
    """simple-obfs' server lets undisguised Shadowsocks through: no plugin mismatch to see."""
    _, running = lab
    target = imported(write, running.shadowsocks["obfs-http"].link(plugin=""), running)
    result, real_ok, said = asyncio.run(judged(target, OK_TIMEOUT))
    check("plain to obfs", None, result, real_ok, said)


def non_printable_random(length: int) -> bytes:
    """Randomness whose first byte is not printable: a salt the GFW's exemption never spares."""
    return b"\x00" + os.urandom(length - 1)


CENSORED: dict[str, tuple[str, str, str, tuple[Failure, str] | None]] = {
    # name: (lab server, censor mode, its protocol argument, expected)
    "silent drop": ("aes-256-gcm", "drop", "tcp", (Failure.TIMEOUT, "connect")),
    "reset after the first packet": ("aes-256-gcm", "reset-data", "tcp", (Failure.RESET, "data")),
    "GFW rule on plain shadowsocks": ("aes-256-gcm", "dpi", "encrypted", (Failure.TIMEOUT, "data")),
    "GFW rule spares obfs=tls": ("obfs-tls", "dpi", "encrypted", None),
    "GFW rule spares websocket": ("v2ray-ws", "dpi", "encrypted", None),
    "GFW rule spares trojan": ("trojan", "dpi", "encrypted", None),
}


@pytest.mark.parametrize("name", list(CENSORED))
async def test_censor_cases(
    lab: tuple[Namespace, ProxyLab], write: Callable[[str, str], Path], name: str
) -> None:
    namespace, running = lab
    server, mode, protocol, expect = CENSORED[name]
    link = running.trojan.link() if server == "trojan" else running.shadowsocks[server].link()
    target = imported(write, link, running)
    spec = None
    if isinstance(target, ShadowsocksTarget):
        spec = ProbeSpec(machine=lambda t: shadowsocks_client(t, random_bytes=non_printable_random))
    with Censor(namespace).applied(mode, protocol, port=target.port):
        result, real_ok, said = await judged(
            target, OK_TIMEOUT if expect is None else FAIL_TIMEOUT, spec
        )
        if real_ok and not result.ok and mode == "dpi":
            # ss-local's own salt was printable: the rule's exemption, one in ~380; once more
            _, real_ok, said = await judged(target, FAIL_TIMEOUT, spec)
    check(name, expect, result, real_ok, said)
