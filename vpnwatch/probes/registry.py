"""Protocol name → probe: the one place a new protocol is registered for the scheduler.

Each entry names the module and :class:`~vpnwatch.probes.driver.ProbeSpec` of a protocol; the
module is imported the first time a target of that protocol is probed. ``vpnwatch check`` of one
WireGuard file then pays nothing for OpenVPN's TLS, obfs4's Elligator or dnspython.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from vpnwatch.probes import Probe

#: Protocol name → "module:SPEC".
SPECS = {
    "wireguard": "vpnwatch.probes.wireguard:WIREGUARD",
    "openvpn": "vpnwatch.probes.openvpn:OPENVPN",
    "obfs4": "vpnwatch.probes.obfs4:OBFS4",
    "tcp": "vpnwatch.probes.control:TCP",
    "tls": "vpnwatch.probes.control:TLS",
    "dns": "vpnwatch.probes.control:DNS",
}


class ProbeRegistry(MutableMapping[str, Probe]):
    """The probes by protocol name, each built from its spec on first use."""

    def __init__(self, specs: dict[str, str]) -> None:
        self._specs = dict(specs)
        self._probes: dict[str, Probe] = {}

    def __getitem__(self, name: str) -> Probe:
        if name not in self._probes:
            module, _, attribute = self._specs[name].partition(":")
            self._probes[name] = getattr(importlib.import_module(module), attribute).probe()
        return self._probes[name]

    def __setitem__(self, name: str, probe: Probe) -> None:
        self._specs.setdefault(name, "")
        self._probes[name] = probe

    def __delitem__(self, name: str) -> None:
        del self._specs[name]
        self._probes.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


PROBES = ProbeRegistry(SPECS)
