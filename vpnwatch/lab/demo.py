"""``vpnwatch demo``: the monitor on an embedded default — the lab's real servers.

It builds a lab namespace with real VPN servers (wireguard-go, OpenVPN 2.6, obfs4proxy,
strongSwan's charon, ocserv, shadowsocks-libev with simple-obfs and v2ray-plugin, trojan) and
control endpoints (openssl, dnsmasq), writes the files a user would hold for them (wg-quick
``.conf``, ``.ovpn``, a bridge line, a swanctl.conf, proxy links, a vpnwatch YAML), and runs the
monitor against them, so a newcomer sees real handshakes, a real failure, and /metrics, with one
command.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from vpnwatch.errors import ConfigError
from vpnwatch.lab.controls import LAB_NAME, ControlEndpoints, start_controls
from vpnwatch.lab.netns import LabError, Namespace
from vpnwatch.lab.obfs4 import Obfs4Server
from vpnwatch.lab.ocserv import GROUPS, USERNAME, OcservServer
from vpnwatch.lab.openvpn import OpenVPNLab, ServerVariant
from vpnwatch.lab.proxies import proxy_lab
from vpnwatch.lab.strongswan import CharonGateway
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer, generate_preshared_key

PROXIES_FILE = "proxies-lab.links"
OPENVPN_VARIANTS = (
    ServerVariant("udp-tls-auth", wrap="tls-auth"),
    ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
)


#: The demo's obfs4 bridge has ocserv's usual 4443.
ANYCONNECT_PORT = 10443


@contextlib.contextmanager
def demo_lab(directory: Path, *, interval: float) -> Iterator[Path]:
    """Start the lab and yield the path of a vpnwatch config that probes it."""
    if os.geteuid() != 0:
        raise ConfigError("the demo builds a network namespace: run it as root")
    try:
        with (
            Namespace() as ns,
            WireGuardServer(ns) as wireguard,
            Obfs4Server(ns) as bridge,
            proxy_lab(ns) as proxies,
            CharonGateway(ns) as ikev2,
            OcservServer(ns, _subdirectory(directory, "ocserv"), port=ANYCONNECT_PORT) as ocserv,
        ):
            openvpn = OpenVPNLab(ns, _subdirectory(directory, "openvpn-server"))
            openvpn.start(OPENVPN_VARIANTS)
            files = _wireguard_files(wireguard) | _openvpn_files(openvpn, directory)
            files["obfs4-lab.txt"] = bridge.bridge_line() + "\n"
            # A provider's subscription: Shadowsocks plain, behind obfs=tls and v2ray-plugin, and
            # Trojan, asked to fetch the destination behind them and trusting the lab's CA.
            files[PROXIES_FILE] = proxies.links()
            overrides = {
                PROXIES_FILE: {"destination": proxies.generate_204, "ca": proxies.trojan.ca}
            }
            for name, text in files.items():
                path = directory / name
                if not path.exists():
                    path.write_text(text)
                path.chmod(0o600)
            controls = start_controls(ns, _subdirectory(directory, "controls"))
            config = _config(files, controls, interval, overrides)
            config["targets"].insert(len(files), _ikev2_target(ikev2, directory))
            config["targets"].insert(len(files) + 1, _anyconnect_target(ocserv, directory))
            path = directory / "vpnwatch.yml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            yield path
    except LabError as exc:
        raise ConfigError(f"cannot build the lab: {exc}") from None


def _subdirectory(directory: Path, name: str) -> Path:
    path = directory / name
    path.mkdir(mode=0o700)
    return path


def _wireguard_files(server: WireGuardServer) -> dict[str, str]:
    good, with_psk, stranger = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    server.add_peer(good.public)
    server.add_peer(with_psk.public, generate_preshared_key())
    return {
        "wg-lab.conf": server.client_config(good),
        "wg-lab-psk.conf": server.client_config(with_psk),
        "wg-lab-v6.conf": server.client_config(good, ipv6=True),
        # A key the server never heard of: it stays silent, as it does to any stranger.
        "wg-unknown-key.conf": server.client_config(stranger),
    }


def _openvpn_files(lab: OpenVPNLab, directory: Path) -> dict[str, str]:
    files = {}
    for name, server in lab.servers.items():
        path = lab.write_client_file(server, directory / f"ovpn-{name}.ovpn")
        files[path.name] = path.read_text()
    return files


#: The demo's tunnel tests: a short hold, so that they come every few probes and a censor's
#: effect on the tunnel shows within a minute.
DEMO_TRAIN = {"hold_seconds": 1.0, "burst_seconds": 1.0}


def _anyconnect_target(gateway: OcservServer, directory: Path) -> dict[str, Any]:
    """A password login to the lab's ocserv in its first group, trusting the lab's CA."""
    password = directory / "anyconnect-lab.password"
    password.write_text(gateway.password + "\n")
    password.chmod(0o600)
    return {
        "name": "anyconnect-lab",
        "protocol": "anyconnect",
        "url": gateway.url,
        "group": GROUPS[0],
        "username": USERNAME,
        "password_file": password.name,
        "ca": gateway.ca,
        "labels": {"site": "lab", "provider": "lab"},
    }


def _ikev2_target(gateway: CharonGateway, directory: Path) -> dict[str, Any]:
    """An EAP-MSCHAPv2 road warrior's swanctl.conf, pinging the address behind the gateway."""
    files = gateway.client_conf(_subdirectory(directory, "ikev2-eap"), "eap")
    return {
        "from": str(files.path.relative_to(directory)),
        "name": "ikev2-eap",
        "echo": gateway.echo_address,
        "labels": {"site": "lab", "provider": "lab"},
    }


def _config(
    files: dict[str, str],
    controls: ControlEndpoints,
    interval: float,
    overrides: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    site = {"site": "lab"}
    tunnel_interval = max(5 * interval, 10.0)
    return {
        "settings": {
            "interval": interval,
            "timeout": min(5.0, interval),
            "tunnel": {
                "interval": tunnel_interval,
                "timeout": min(10.0, tunnel_interval),
                "train": DEMO_TRAIN,
            },
        },
        "targets": [
            *(
                {"from": name, "labels": {**site, "provider": "lab"}, **overrides.get(name, {})}
                for name in files
            ),
            {
                "name": "control-tls",
                "protocol": "tls",
                "host": controls.host,
                "port": controls.tls_port,
                "server_name": controls.server_name,
                "ca": controls.ca,
                "labels": site,
            },
            {
                "name": "control-dns",
                "protocol": "dns",
                "host": controls.host,
                "port": controls.dns_port,
                "query": LAB_NAME,
                "labels": site,
            },
        ],
    }
