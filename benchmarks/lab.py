"""The lab every benchmark part shares: one namespace with the real servers, and their targets.

Targets are made the way users make them, from the files they hold (wg-quick ``.conf``, ``.ovpn``,
a bridge line) through vpnwatch's importers, so the benchmarks probe what the monitor would.
WireGuard gets many client keys, each a peer of the server: the probe spaces initiations of one key
to one server 20 ms apart (the server's flood guard), and with many keys that spacing is not what a
batch measures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.wireguard_fleet import FleetWireGuardServer
from vpnwatch.importers import load_file
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge, Obfs4Server
from vpnwatch.lab.openvpn import OpenVPNLab, ServerVariant, generate_pki
from vpnwatch.lab.tor import TorBridgeServer
from vpnwatch.lab.wireguard import KeyPair
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.obfs4 import Obfs4Target, encode_cert
from vpnwatch.targets.openvpn import OpenVPNTarget
from vpnwatch.targets.wireguard import WireGuardTarget

#: The OpenVPN servers benchmarked: the two setups providers ship most, one per transport.
OPENVPN_VARIANTS = (
    ServerVariant("udp-tls-auth", wrap="tls-auth"),
    ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
)


@dataclass
class Lab:
    """The running lab: where its files are and the servers in its namespace."""

    namespace: Namespace
    directory: Path
    wireguard: FleetWireGuardServer
    wireguard_keys: list[KeyPair]
    openvpn: OpenVPNLab
    bridge: Obfs4Bridge
    tor_bridge: Obfs4Bridge

    def wireguard_targets(self) -> list[WireGuardTarget]:
        """One target per client key, each from its own wg-quick file."""
        targets = []
        for index, client in enumerate(self.wireguard_keys):
            path = self.directory / f"wg-{index}.conf"
            path.write_text(self.wireguard.client_config(client))
            path.chmod(0o600)
            targets.append(_only(load_file(path), WireGuardTarget))
        return targets

    def wireguard_keys_at_least(self, count: int) -> list[KeyPair]:
        """The client keys, registering more with the server until there are ``count``."""
        fresh = [KeyPair.generate() for _ in range(count - len(self.wireguard_keys))]
        self.wireguard.add_peers(key.public for key in fresh)
        self.wireguard_keys += fresh
        return self.wireguard_keys

    def ovpn(self, variant: str, *, wrong_ca: bool = False) -> Path:
        """A provider-style ``.ovpn`` for a server; ``wrong_ca`` trusts another CA instead."""
        server = self.openvpn.servers[variant]
        name = f"{variant}-wrong-ca" if wrong_ca else variant
        return self.openvpn.write_client_file(
            server, self.directory / f"{name}.ovpn", ca=generate_pki().ca if wrong_ca else None
        )

    def openvpn_target(self, ovpn: Path) -> OpenVPNTarget:
        return _only(load_file(ovpn), OpenVPNTarget)

    def obfs4_target(self, *, wrong_cert: bool = False) -> Obfs4Target:
        """The bridge from its published bridge line; ``wrong_cert`` as from a stale line."""
        line = self.bridge.bridge_line()
        if wrong_cert:
            line = self.bridge.bridge_line(cert=encode_cert(os.urandom(20), os.urandom(32)))
        path = self.directory / ("bridge-wrong-cert.txt" if wrong_cert else "bridge.txt")
        path.write_text(line + "\n")
        return _only(load_file(path), Obfs4Target)

    def obfs4_tor_target(self) -> Obfs4Target:
        """The tor bridge from its bridge line, checked through to its relay (``data: tor``)."""
        path = self.directory / "tor-bridge.txt"
        path.write_text(self.tor_bridge.bridge_line() + "\n")
        target = _only(load_file(path), Obfs4Target)
        return Obfs4Target.model_validate({**target.model_dump(), "data": "tor"})


_Target = TypeVar("_Target", bound=TargetBase)


def _only(targets: list[TargetBase], kind: type[_Target]) -> _Target:
    (target,) = targets
    assert isinstance(target, kind)
    return target


@contextlib.contextmanager
def running_lab(wireguard_peers: int) -> Iterator[Lab]:
    """Build the lab (needs root) and remove every part of it on exit."""
    with (
        tempfile.TemporaryDirectory(prefix="vpnwatch-bench-") as workdir,
        Namespace() as namespace,
        FleetWireGuardServer(namespace) as wireguard,
        Obfs4Server(namespace) as bridge,
        TorBridgeServer(namespace) as tor_bridge,
    ):
        directory = Path(workdir)
        keys = [KeyPair.generate() for _ in range(wireguard_peers)]
        wireguard.add_peers(client.public for client in keys)
        server_dir = directory / "openvpn-server"
        server_dir.mkdir(mode=0o700)
        openvpn = OpenVPNLab(namespace, server_dir)
        openvpn.start(OPENVPN_VARIANTS)
        yield Lab(namespace, directory, wireguard, keys, openvpn, bridge, tor_bridge)
