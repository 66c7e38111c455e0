"""A resolver inside a lab namespace, used by whatever runs there through ``ip netns exec``.

Clients resolve host names with the system's resolver; ``ip netns exec NS`` bind-mounts the
files under ``/etc/netns/NS/`` over ``/etc``, so a ``resolv.conf`` there sends every lookup of a
process run in the namespace to the lab's own ``dnsmasq``, and no lab name ever reaches a real
resolver. Names ending in ``.invalid`` get NXDOMAIN, as they must.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from vpnwatch.lab.controls import wait_listening
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.process import LabService

_NETNS_ETC = Path("/etc/netns")


class NamespaceResolver(LabService["NamespaceResolver"]):
    """``dnsmasq`` answering ``records`` (name → addresses) for processes run in ``namespace``."""

    def __init__(self, namespace: Namespace, records: Mapping[str, Sequence[str]]) -> None:
        self.namespace = namespace
        self.records = dict(records)
        self._etc = _NETNS_ETC / namespace.name

    @property
    def prefix(self) -> list[str]:
        """Prepend to a command to run it in the namespace, with this resolver."""
        return self.namespace.argv([])

    def start(self) -> NamespaceResolver:
        ns = self.namespace
        argv = ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                f"--listen-address={ns.ip}", "--port=53", "--pid-file=",
                "--address=/invalid/"]  # fmt: skip
        argv += [f"--host-record={name},{','.join(ips)}" for name, ips in self.records.items()]
        ns.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._etc.mkdir(parents=True, exist_ok=True)
        (self._etc / "resolv.conf").write_text(f"nameserver {ns.ip}\noptions timeout:1\n")
        wait_listening(ns, 53, "udp")
        return self

    def close(self) -> None:
        shutil.rmtree(self._etc, ignore_errors=True)
