"""WireGuard tunnel tests against the real wireguard-go: echoes through the tunnel, from the file
a user holds (its ``Address`` and ``AllowedIPs``), in a lab namespace this module creates.

The cases are independent and run concurrently, one key each (a key's probes take turns).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vpnwatch.importers.wgquick import load_wgquick
from vpnwatch.lab.netns import Namespace, run
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.probes.registry import PROBES
from vpnwatch.quality import TrainPlan, TunnelPlan
from vpnwatch.result import Failure, Result
from vpnwatch.targets.wireguard import WireGuardTarget

pytestmark = pytest.mark.lab

PLAN = TunnelPlan(timeout=10, train=TrainPlan(echoes=10, spacing=0.02, hold_seconds=0.5))
wireguard_probe = PROBES["wireguard"]


@pytest.fixture(scope="module")
def server() -> Iterator[WireGuardServer]:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        yield server


def user_target(server: WireGuardServer, directory: Path, **fields: Any) -> WireGuardTarget:
    """The target a user's wg-quick file for a new client of ``server`` gives, with overrides."""
    client = KeyPair.generate()
    server.add_peer(client.public)
    path = directory / f"{client.public.hex()[:8]}.conf"
    path.write_text(server.client_config(client))
    (target,) = load_wgquick(path)
    return target.model_copy(update=fields)


async def tunnel_test(target: WireGuardTarget) -> Result:
    return await wireguard_probe(target, PLAN.timeout, tunnel=PLAN)


def test_the_lab_routes_its_tunnel_pools_nowhere_on_this_host(server: WireGuardServer) -> None:
    for pool in server.tunnel_pools:
        family = "-6" if ":" in pool else "-4"
        assert run(["ip", family, "route", "show", "type", "unreachable", pool]).strip()


async def test_echoes_through_the_tunnel_verify_over_ipv4_and_ipv6(
    server: WireGuardServer, tmp_path: Path
) -> None:
    v4 = user_target(server, tmp_path)
    assert v4.tunnel_ready and str(v4.ping) == server.tunnel_address  # from AllowedIPs
    v6 = user_target(server, tmp_path, ping=ipaddress.ip_address(server.tunnel_address6))
    results = await asyncio.gather(tunnel_test(v4), tunnel_test(v6))
    for result in results:
        assert result.ok, result
        assert [stage for stage, _ in result.stages] == ["resolve", "handshake", "data"]
        quality = result.tunnel
        assert quality is not None and quality.loss == 0.0 and len(quality.rtts) == 10
        assert dict(quality.received) == dict(quality.sent)  # burst and hold too
        assert not quality.cut and quality.goodput is not None
        assert result.degraded == ()
        assert "10/10 echoes through the tunnel" in result.detail
    # The server saw the session and counted the bytes it carried.
    transfer = server.namespace.exec(["wg", "show", server.interface, "transfer"])
    assert any(int(line.split("\t")[1]) > 10_000 for line in transfer.splitlines())


async def test_wrong_addresses_and_a_server_that_does_not_forward_carry_nothing(
    server: WireGuardServer, tmp_path: Path
) -> None:
    """A tunnel address nobody holds, a source address that is not ours (wireguard-go drops
    it: not in our AllowedIPs), and a destination beyond a server that does not forward (its
    route leads out of the namespace, to this host's unreachable route for the pool): the
    handshake verifies and then nothing comes back, so the tunnel fails in ``data``."""
    namespace = server.namespace
    slot, beyond = namespace.slot, f"198.19.{namespace.slot}.253/32"
    namespace.exec(["ip", "route", "replace", beyond, "via", namespace.host_ip])
    cases = {
        "nobody holds it": user_target(
            server, tmp_path, ping=ipaddress.ip_address(f"198.19.{slot}.200")
        ),
        "not our address": user_target(
            server, tmp_path, address=(ipaddress.ip_interface(f"198.19.{slot}.250/32"),)
        ),
        "not forwarded": user_target(
            server, tmp_path, ping=ipaddress.ip_address(f"198.19.{slot}.253")
        ),
    }
    try:
        results = await asyncio.gather(*(tunnel_test(target) for target in cases.values()))
    finally:
        namespace.exec(["ip", "route", "del", beyond])
    for name, result in zip(cases, results, strict=True):
        assert (result.failure, result.stage) == (Failure.TIMEOUT, "data"), (name, result)
        assert [stage for stage, _ in result.stages] == ["resolve", "handshake"], name
        assert result.tunnel is not None and result.tunnel.train_received == 0, name
        assert dict(result.tunnel.sent)["burst"] == 0, name  # gave up after the train


async def test_a_router_inside_the_tunnel_saying_unreachable_is_unreachable(
    server: WireGuardServer, tmp_path: Path
) -> None:
    """The server forwards, and its routing table has no way to the destination: its kernel
    answers with ICMP host unreachable, which comes back authenticated through the tunnel."""
    namespace, destination = server.namespace, f"198.19.{server.namespace.slot}.254"
    namespace.exec(["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"])
    namespace.exec(["ip", "route", "add", "unreachable", f"{destination}/32"])
    try:
        result = await tunnel_test(
            user_target(server, tmp_path, ping=ipaddress.ip_address(destination))
        )
    finally:
        namespace.exec(["ip", "route", "del", "unreachable", f"{destination}/32"])
        namespace.exec(["sysctl", "-qw", "net.ipv4.conf.all.forwarding=0"])
    assert (result.failure, result.stage) == (Failure.UNREACHABLE, "data"), result
    assert (
        f"{server.tunnel_address} inside the tunnel says {destination} is unreachable"
        in result.detail
    )
