"""Protocol name → probe: the one place a new protocol is registered for the scheduler.

Each entry names the module and :class:`~vpnwatch.probes.driver.ProbeSpec` of a protocol; the
module is imported the first time a target of that protocol is probed. ``vpnwatch check`` of one
WireGuard file then pays nothing for OpenVPN's TLS, obfs4's Elligator or dnspython.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

from vpnwatch.probes import Probe


@dataclass(frozen=True, slots=True)
class Registration:
    """What the rest of vpnwatch knows of a protocol without importing its probe."""

    #: "module:SPEC" of its :class:`~vpnwatch.probes.driver.ProbeSpec`
    spec: str
    #: the name as its users write it, for reports and the status page
    display: str
    #: a control probe of the site's own network rather than a VPN protocol
    control: bool = False


#: Protocol name → registration, in the order reports list them.
PROTOCOLS: dict[str, Registration] = {
    "wireguard": Registration("vpnwatch.probes.wireguard:WIREGUARD", "WireGuard"),
    "openvpn": Registration("vpnwatch.probes.openvpn:OPENVPN", "OpenVPN"),
    "obfs4": Registration("vpnwatch.probes.obfs4:OBFS4", "obfs4"),
    "anyconnect": Registration("vpnwatch.probes.anyconnect:ANYCONNECT", "AnyConnect"),
    "tcp": Registration("vpnwatch.probes.control:TCP", "TCP", control=True),
    "tls": Registration("vpnwatch.probes.control:TLS", "TLS", control=True),
    "dns": Registration("vpnwatch.probes.control:DNS", "DNS", control=True),
}

#: Protocol name → "module:SPEC".
SPECS = {name: registration.spec for name, registration in PROTOCOLS.items()}


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
