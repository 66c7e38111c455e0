"""``vpnwatch demo``: the monitor on an embedded default — the lab's real servers.

It builds a lab namespace with real VPN servers and control endpoints, writes the files a user
would hold for them (wg-quick ``.conf``, a vpnwatch YAML), and runs the monitor against them, so a
newcomer sees real handshakes, a real failure or two, and /metrics, with one command.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import yaml

from vpnwatch.errors import ConfigError
from vpnwatch.lab.controls import LAB_NAME, start_controls
from vpnwatch.lab.netns import LabError, Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer, generate_preshared_key


@contextlib.contextmanager
def demo_lab(directory: Path, *, interval: float) -> Iterator[Path]:
    """Start the lab and yield the path of a vpnwatch config that probes it."""
    if os.geteuid() != 0:
        raise ConfigError("the demo builds a network namespace: run it as root")
    try:
        with Namespace() as ns, WireGuardServer(ns) as wireguard:
            controls = start_controls(ns, directory)
            good, with_psk, stranger = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
            wireguard.add_peer(good.public)
            psk = generate_preshared_key()
            wireguard.add_peer(with_psk.public, psk)
            files = {
                "wg-lab.conf": wireguard.client_config(good),
                "wg-lab-psk.conf": wireguard.client_config(with_psk),
                "wg-lab-v6.conf": wireguard.client_config(good, ipv6=True),
                # A key the server never heard of: it stays silent, as to any stranger.
                "wg-unknown-key.conf": wireguard.client_config(stranger),
            }
            for name, text in files.items():
                path = directory / name
                path.write_text(text)
                path.chmod(0o600)
            site = {"site": "lab"}
            config = {
                "settings": {"interval": interval, "timeout": min(5.0, interval)},
                "targets": [
                    *({"from": name, "labels": {**site, "provider": "lab"}} for name in files),
                    {
                        "name": "control-tls",
                        "protocol": "tls",
                        "host": controls.host,
                        "port": controls.tls_port,
                        "server_name": controls.server_name,
                        "ca_file": str(controls.ca_file),
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
            path = directory / "vpnwatch.yml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            yield path
    except LabError as exc:
        raise ConfigError(f"cannot build the lab: {exc}") from None
