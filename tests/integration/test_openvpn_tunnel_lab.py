"""Echoes through the OpenVPN data channel of real 2.6 servers, beside ``ping`` through the real
client's tunnel on the same ``.ovpn`` files.

Every server has a tun device in the lab namespace, so its own tunnel address answers echoes;
each case runs the probe and the real client (whose tun device its ``--up`` script moves into a
namespace of its own) at once, and demands that both agree on whether the tunnel carries traffic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import OpenVPNLab, ServerVariant, ping_through_real_client
from vpnwatch.probes import openvpn as openvpn_probe
from vpnwatch.probes.openvpn import OPENVPN
from vpnwatch.quality import TrainPlan, TunnelPlan
from vpnwatch.result import Failure, Result

pytestmark = [pytest.mark.lab]

probe_openvpn = OPENVPN.probe()

PROBE_TIMEOUT = 5.0
REAL_CLIENT_TIMEOUT = 10.0
PINGS = 3
#: A short tunnel test: three echoes, no burst or hold.
PLAN = TunnelPlan(
    timeout=PROBE_TIMEOUT,
    train=TrainPlan(echoes=PINGS, spacing=0.05, burst=0, hold_seconds=0, linger=0.5),
)
_CBC = ("data-ciphers AES-256-CBC", "data-ciphers-fallback AES-256-CBC", "auth SHA256")
_CBC_CLIENT = ("data-ciphers AES-256-GCM:AES-256-CBC", "auth SHA256")

VARIANTS = (
    ServerVariant("udp-aes256gcm"),
    ServerVariant("tcp-aes128gcm", proto="tcp", lines=("data-ciphers AES-128-GCM",)),
    ServerVariant("udp-chacha", wrap="tls-crypt", lines=("data-ciphers CHACHA20-POLY1305",)),
    ServerVariant("tcp-chacha", proto="tcp", lines=("data-ciphers CHACHA20-POLY1305",)),
    ServerVariant("udp-cbc", wrap="tls-auth", lines=_CBC, client_data=_CBC_CLIENT),
    ServerVariant("tcp-cbc", proto="tcp", lines=_CBC, client_data=_CBC_CLIENT),
    ServerVariant("udp-comp-lzo", lines=("comp-lzo no", 'push "comp-lzo no"')),
    ServerVariant("udp-no-forward", forwards=False),
    ServerVariant("udp-net30", lines=("topology net30",)),
    ServerVariant("tcp-ipv6-pool", proto="tcp", lines=("server-ipv6 2001:2:0:fe00::/64",)),
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenVPNLab]:
    with Namespace() as namespace:
        lab = OpenVPNLab(namespace, tmp_path_factory.mktemp("openvpn-tunnel-lab"))
        lab.start(VARIANTS, first_port=1394)
        yield lab


@dataclass(frozen=True)
class Case:
    server: str
    ok: bool
    #: Ping an address in the server's pool that no one holds, instead of the server's own.
    wrong_address: bool = False
    #: Ping this IPv6 address in the tunnel instead.
    ping6: str | None = None


CASES = {
    "udp-aes256gcm": Case("udp-aes256gcm", ok=True),
    "tcp-aes128gcm": Case("tcp-aes128gcm", ok=True),
    "udp-chacha": Case("udp-chacha", ok=True),
    "tcp-chacha": Case("tcp-chacha", ok=True),
    "udp-cbc": Case("udp-cbc", ok=True),
    "tcp-cbc": Case("tcp-cbc", ok=True),
    "udp-comp-lzo": Case("udp-comp-lzo", ok=True),
    "udp-net30": Case("udp-net30", ok=True),
    # ICMPv6 from the pushed ifconfig-ipv6 address to the server's, given as the target's ping.
    "ipv6-in-the-tunnel": Case("tcp-ipv6-pool", ok=True, ping6="2001:2:0:fe00::1"),
    "no-forward": Case("udp-no-forward", ok=False),
    # The server has nowhere to send it.
    "wrong-tunnel-address": Case("udp-aes256gcm", ok=False, wrong_address=True),
}


async def both(lab: OpenVPNLab, case: Case, directory: Path, name: str) -> tuple[Result, bool]:
    server = lab.servers[case.server]
    config = lab.write_client_file(server, directory / f"{name}.ovpn")
    (target,) = load_ovpn(config)
    address = server.tunnel_address
    if case.wrong_address:
        address = str(IPv4Address(address) + 76)
        target = target.model_copy(update={"ping": IPv4Address(address)})
    if case.ping6 is not None:
        address = case.ping6
        target = target.model_copy(update={"ping": IPv6Address(address)})
    device = f"vwc{lab.namespace.slot}x{list(CASES).index(name)}"
    result, real = await asyncio.gather(
        probe_openvpn(target, PROBE_TIMEOUT, tunnel=PLAN),
        ping_through_real_client(
            config, address, device=device, count=PINGS, interval=0.2, timeout=REAL_CLIENT_TIMEOUT
        ),
    )
    assert real.connected, f"the real client did not connect:\n{real.log}"
    return result, bool(real.rtts)


@pytest.mark.parametrize("name", CASES)
async def test_echo_through_the_tunnel_agrees_with_ping(
    lab: OpenVPNLab, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    result, real_ok = await both(lab, case, tmp_path, name)
    assert real_ok == case.ok, "ping through the real client's tunnel disagrees"
    assert result.ok == case.ok, result
    reached = [stage for stage, _ in result.stages]
    assert result.tunnel is not None, result
    if case.ok:
        assert reached[-4:] == ["reset", "tls", "auth", "data"], result
        # Each server offers one cipher: the echoes went through that suite.
        assert result.tunnel.train_received == PINGS, result
    else:
        # The handshake verified; the tunnel carried nothing back.
        assert reached[-3:] == ["reset", "tls", "auth"], result
        assert (result.failure, result.stage) == (Failure.TIMEOUT, "data"), result
        assert result.tunnel.train_sent == PINGS and result.tunnel.train_received == 0


@pytest.mark.parametrize("server", ["udp-chacha", "udp-cbc"])
async def test_the_censors_data_only_drop_fails_the_tunnel_not_the_handshake(
    lab: OpenVPNLab, tmp_path: Path, server: str
) -> None:
    config = lab.write_client_file(lab.servers[server], tmp_path / f"{server}.ovpn")
    (target,) = load_ovpn(config)
    # P_DATA_V1/V2 only
    with Censor(lab.namespace).applied("drop-data", "openvpn", lab.servers[server].port):
        result, handshake = await asyncio.gather(
            probe_openvpn(target, PROBE_TIMEOUT, tunnel=PLAN), probe_openvpn(target, PROBE_TIMEOUT)
        )
    reached = [stage for stage, _ in result.stages]
    assert reached[-3:] == ["reset", "tls", "auth"], result  # the handshake verified
    assert (result.ok, result.failure, result.stage) == (False, Failure.TIMEOUT, "data"), result
    assert (handshake.ok, handshake.stage) == (True, "auth"), handshake  # the handshake probe


@pytest.mark.parametrize("server", ["udp-aes256gcm", "tcp-chacha", "udp-cbc"])
async def test_keys_from_the_prf_when_tls_ekm_is_not_offered(
    lab: OpenVPNLab, tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without IV_PROTO's key-export bit the server keys the data channel with key-method 2's PRF
    (as for any client older than 2.6); the other tests run with TLS-EKM, as 2.6 clients do."""
    monkeypatch.setattr(openvpn_probe, "exporter_available", lambda: False)
    config = lab.write_client_file(lab.servers[server], tmp_path / f"{server}.ovpn")
    (target,) = load_ovpn(config)
    log = lab.servers[server].log
    before = log.read_text().count("key-derivation tls-ekm")
    result = await probe_openvpn(target, PROBE_TIMEOUT, tunnel=PLAN)
    assert result.ok and result.tunnel is not None, result
    assert result.tunnel.train_received == PINGS, result
    assert log.read_text().count("key-derivation tls-ekm") == before  # the PRF, then
    monkeypatch.undo()
    assert (await probe_openvpn(target, PROBE_TIMEOUT, tunnel=PLAN)).ok
    assert log.read_text().count("key-derivation tls-ekm") == before + 1  # and TLS-EKM
