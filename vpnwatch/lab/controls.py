"""The lab's control endpoints: a TLS server (also the TCP control) and a DNS resolver.

Both are real Debian programs, ``openssl s_server`` and ``dnsmasq``, inside a lab namespace.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vpnwatch.lab.netns import LabError, Namespace
from vpnwatch.lab.pki import CertificateAuthority

#: The name the lab resolver answers for, and with what.
LAB_NAME = "vpnwatch.test"
LAB_NAME_ADDRESS = "198.18.255.10"


@dataclass(frozen=True)
class ControlEndpoints:
    host: str
    tls_port: int
    dns_port: int
    server_name: str
    ca: str  # PEM: the certificate the TLS server's chain ends in


def start_controls(
    ns: Namespace, directory: Path, *, tls_port: int = 8443, dns_port: int = 53
) -> ControlEndpoints:
    """Start a TLS server and a resolver in ``ns``; they stop when the namespace is destroyed."""
    ca = CertificateAuthority.create()
    names = ("controls.vpnwatch.test", ns.ip)
    cert, key = ca.issue(names[0], server=True, sans=names).write(directory, "controls")
    ns.spawn(
        ["openssl", "s_server", "-quiet", "-accept", str(tls_port), "-cert", str(cert),
         "-key", str(key), "-naccept", "100000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ns.spawn(
        ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
         f"--listen-address={ns.ip}", f"--port={dns_port}", "--pid-file=",
         f"--host-record={LAB_NAME},{LAB_NAME_ADDRESS}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_listening(ns, tls_port, "tcp")
    wait_listening(ns, dns_port, "udp")
    return ControlEndpoints(ns.ip, tls_port, dns_port, names[0], ca.cert)


def wait_listening(ns: Namespace, port: int, transport: str, timeout: float = 10.0) -> None:
    """Wait until something in ``ns`` listens on ``port``: servers start asynchronously."""
    flag = "-tln" if transport == "tcp" else "-uln"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f":{port} " in ns.exec(["ss", "-H", flag], check=False):
            return
        time.sleep(0.05)
    raise LabError(f"nothing listens on {transport} port {port} in {ns.name} after {timeout:g} s")
