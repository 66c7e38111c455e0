"""Probes against hostile peers in the lab: the right failure, in time, and nobody else delayed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.hardening.files import static_key_file
from vpnwatch.config import Config, Settings
from vpnwatch.jobs import Job
from vpnwatch.lab.hostile import Behaviour, HostilePeers, PublicKeys, port_of
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import Pki, generate_pki
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.monitor import Monitor
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.obfs4 import Obfs4Target
from vpnwatch.targets.openvpn import OpenVPNTarget
from vpnwatch.targets.wireguard import WireGuardTarget

pytestmark = pytest.mark.lab

TIMEOUT = 2.0
B = Behaviour

#: (protocol and transport, behaviour) → the failure the probe must report.
EXPECTED = {
    ("wireguard", B.GARBAGE): "protocol",
    ("wireguard", B.TRUNCATED): "protocol",
    ("wireguard", B.OVERSIZED): "protocol",
    ("wireguard", B.FLOOD): "protocol",
    # A bad mac1 may be anyone's forgery: ignored, as the server's silence would be.
    ("wireguard", B.BAD_MAC): "timeout",
    ("wireguard", B.BAD_AUTH): "auth",
    ("openvpn-udp", B.GARBAGE): "protocol",
    ("openvpn-udp", B.TRUNCATED): "protocol",
    ("openvpn-udp", B.OVERSIZED): "protocol",
    ("openvpn-udp", B.FLOOD): "protocol",
    ("openvpn-udp", B.BAD_MAC): "auth",
    ("openvpn-tcp", B.GARBAGE): "protocol",
    ("openvpn-tcp", B.TRUNCATED): "eof",
    ("openvpn-tcp", B.OVERSIZED): "protocol",
    ("openvpn-tcp", B.SLOW): "timeout",
    ("openvpn-tcp", B.BAD_MAC): "auth",
    ("obfs4", B.GARBAGE): "protocol",
    ("obfs4", B.TRUNCATED): "eof",
    ("obfs4", B.OVERSIZED): "protocol",
    ("obfs4", B.SLOW): "timeout",
    # The mark and MAC need only the bridge line: a bad one is a broken peer, not an impostor.
    ("obfs4", B.BAD_MAC): "protocol",
    ("obfs4", B.BAD_AUTH): "auth",
}


@dataclass(frozen=True)
class HostileLab:
    namespace: Namespace
    peers: HostilePeers
    client: KeyPair
    pki: Pki
    good: WireGuardServer

    def target(self, kind: str, behaviour: Behaviour) -> TargetBase:
        name = f"{kind}-{behaviour}"
        host, port = self.peers.host, port_of(behaviour)
        if kind == "wireguard":
            return WireGuardTarget(
                name=name,
                host=host,
                port=port,
                private_key=self.client.private,
                public_key=KeyPair.generate().public,
            )
        if kind == "obfs4":
            keys = self.peers.keys
            return Obfs4Target(
                name=name,
                host=host,
                port=port,
                node_id=keys.obfs4_node_id,
                public_key=keys.obfs4_identity,
            )
        wrap = {"tls_wrap": "tls-auth", "key_direction": 1} if behaviour is B.BAD_MAC else {}
        return OpenVPNTarget.model_validate(
            {
                "name": name,
                "host": host,
                "port": port,
                "proto": kind.removeprefix("openvpn-"),
                "ca": self.pki.ca,
                "cert": self.pki.client_cert,
                "key": self.pki.client_key,
                **wrap,
                **({"tls_key": static_key_file(os.urandom(256))} if wrap else {}),
            }
        )


@pytest.fixture(scope="module")
def lab() -> Iterator[HostileLab]:
    client = KeyPair.generate()
    keys = PublicKeys(client.public, os.urandom(20), KeyPair.generate().public)
    with (
        Namespace() as namespace,
        HostilePeers(namespace, keys) as peers,
        WireGuardServer(namespace) as good,
    ):
        yield HostileLab(namespace, peers, client, generate_pki(), good)


async def test_each_hostile_reply_gives_its_failure_within_the_timeout(lab: HostileLab) -> None:
    targets = [lab.target(kind, behaviour) for kind, behaviour in EXPECTED]
    results = await asyncio.gather(*(run_probe(PROBES[t.protocol], t, TIMEOUT) for t in targets))
    found = {key: result.failure for key, result in zip(EXPECTED, results, strict=True)}
    assert found == EXPECTED
    for result in results:
        assert "overran" not in result.detail, result  # the probe kept its own deadline
        assert result.stage, result


async def test_hostile_targets_do_not_delay_the_others(lab: HostileLab) -> None:
    """The real monitor, hostile and good targets together: the good ones keep their pace."""
    interval, timeout, seconds = 0.5, 0.45, 6.0
    hostile = [lab.target(kind, behaviour) for kind, behaviour in EXPECTED]
    good = [lab.good.client_target(f"good-{i}") for i in range(4)]
    jobs = tuple(Job(target, interval, timeout, "test") for target in [*hostile, *good])
    settings = Settings(interval=interval, timeout=timeout, listen="127.0.0.1:0")
    monitor = Monitor(lambda: Config(settings, jobs), PROBES)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stats = monitor.metrics.targets
    # seconds / interval probes, less one for the random first offset and one for jitter.
    least = int(seconds / interval) - 2
    for target in good:
        assert stats[target.name].probes >= least, (target.name, stats[target.name].probes)
        assert stats[target.name].success_ratio == 1.0, stats[target.name].last
    for (kind, behaviour), failure in EXPECTED.items():
        name = f"{kind}-{behaviour}"
        assert stats[name].probes >= least, (name, stats[name].probes)
        # On a loaded machine a hostile reply may miss a 0.45 s deadline now and then, and that
        # probe rightly times out; any class but the expected one and timeout is wrong.
        seen = {seen_failure for seen_failure, _ in stats[name].failures}
        assert failure in seen and seen <= {failure, "timeout"}, (name, seen)
    # No hostile peer makes a probe raise or look like this host's own trouble.
    assert sum(monitor.metrics.errors.values()) == 0, monitor.metrics.errors
