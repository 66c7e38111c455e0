"""One lab for every censor test: each protocol's real server, and the controls, behind a censor.

The lab is built once per session (starting every server takes seconds); the ``censor`` fixture
lifts whatever a test applied, so no test sees another's policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vpnwatch.importers.bridgeline import load_bridge_lines
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.controls import LAB_NAME, start_controls
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Server
from vpnwatch.lab.openvpn import OpenVPNLab, ServerVariant
from vpnwatch.lab.wireguard import WireGuardServer
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget

OPENVPN_VARIANTS = {
    "openvpn-udp": ServerVariant("udp-tls-auth", wrap="tls-auth"),
    # tls-crypt-v2 clients open with the V3 hard reset, the other opcode the censor looks for.
    "openvpn-udp-v3": ServerVariant("udp-tls-crypt-v2", wrap="tls-crypt-v2"),
    "openvpn-tcp": ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
}


@dataclass
class Lab:
    namespace: Namespace
    wireguard: WireGuardServer
    #: Every target by a short name: wireguard, openvpn-udp, openvpn-udp-v3, openvpn-tcp,
    #: obfs4, tcp, tls, dns.
    targets: dict[str, TargetBase]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("censor-lab")
    with (
        Namespace() as namespace,
        WireGuardServer(namespace) as wireguard,
        Obfs4Server(namespace) as bridge,
    ):
        targets: dict[str, TargetBase] = {"wireguard": wireguard.client_target("wireguard")}
        targets |= _openvpn_targets(namespace, directory)
        (directory / "bridge.txt").write_text(bridge.bridge_line() + "\n")
        [targets["obfs4"]] = load_bridge_lines(directory / "bridge.txt").targets
        controls_dir = directory / "controls"
        controls_dir.mkdir()
        controls = start_controls(namespace, controls_dir)
        targets["tcp"] = TcpTarget(name="tcp", host=controls.host, port=controls.tls_port)
        targets["tls"] = TlsTarget(
            name="tls",
            host=controls.host,
            port=controls.tls_port,
            server_name=controls.server_name,
            ca=controls.ca,
        )
        targets["dns"] = DnsTarget(
            name="dns", host=controls.host, port=controls.dns_port, query=LAB_NAME
        )
        yield Lab(namespace, wireguard, targets)


def _openvpn_targets(namespace: Namespace, directory: Path) -> dict[str, TargetBase]:
    server_dir = directory / "openvpn"
    server_dir.mkdir()
    lab = OpenVPNLab(namespace, server_dir)
    lab.start(tuple(OPENVPN_VARIANTS.values()))
    targets: dict[str, TargetBase] = {}
    for name, variant in OPENVPN_VARIANTS.items():
        server = lab.servers[variant.name]
        path = lab.write_client_file(server, directory / f"{name}.ovpn")
        [target] = load_ovpn(path)
        targets[name] = target.model_copy(update={"name": name})
    return targets


@pytest.fixture
def censor(lab: Lab) -> Iterator[Censor]:
    censor = Censor(lab.namespace)
    try:
        yield censor
    finally:
        censor.clear()
