"""Protocol name → registration: the one place a new protocol is registered.

Each entry names, as "module:attribute", the :class:`~vpnwatch.probes.driver.ProbeSpec` and the
target model of a protocol; each is imported the first time it is needed. ``vpnwatch check`` of one
WireGuard file then pays nothing for OpenVPN's TLS, obfs4's Elligator or dnspython, and the
configuration and reports know every protocol without importing any probe.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class Registration:
    """What the rest of vpnwatch knows of a protocol without importing its probe."""

    #: "module:SPEC" of its :class:`~vpnwatch.probes.driver.ProbeSpec`
    spec: str
    #: "module:Class" of the model its inline targets are validated against
    model: str
    #: the name as its users write it, for reports and the status page
    display: str
    #: a control probe of the site's own network rather than a VPN protocol
    control: bool = False


#: Protocol name → registration, in the order reports list them.
PROTOCOLS: dict[str, Registration] = {
    "wireguard": Registration(
        "vpnwatch.probes.wireguard:WIREGUARD",
        "vpnwatch.targets.wireguard:WireGuardTarget",
        "WireGuard",
    ),
    "openvpn": Registration(
        "vpnwatch.probes.openvpn:OPENVPN", "vpnwatch.targets.openvpn:OpenVPNTarget", "OpenVPN"
    ),
    "obfs4": Registration(
        "vpnwatch.probes.obfs4:OBFS4", "vpnwatch.targets.obfs4:Obfs4Target", "obfs4"
    ),
    "shadowsocks": Registration(
        "vpnwatch.probes.shadowsocks:SHADOWSOCKS",
        "vpnwatch.targets.shadowsocks:ShadowsocksTarget",
        "Shadowsocks",
    ),
    "trojan": Registration(
        "vpnwatch.probes.trojan:TROJAN", "vpnwatch.targets.trojan:TrojanTarget", "Trojan"
    ),
    "ikev2": Registration(
        "vpnwatch.probes.ikev2:IKEV2", "vpnwatch.targets.ikev2:IKEv2Target", "IKEv2"
    ),
    "anyconnect": Registration(
        "vpnwatch.probes.anyconnect:ANYCONNECT",
        "vpnwatch.targets.anyconnect:AnyConnectTarget",
        "AnyConnect",
    ),
    "tcp": Registration(
        "vpnwatch.probes.control:TCP", "vpnwatch.targets.control:TcpTarget", "TCP", control=True
    ),
    "tls": Registration(
        "vpnwatch.probes.control:TLS", "vpnwatch.targets.control:TlsTarget", "TLS", control=True
    ),
    "dns": Registration(
        "vpnwatch.probes.control:DNS", "vpnwatch.targets.control:DnsTarget", "DNS", control=True
    ),
}


def load(reference: str) -> Any:
    """The attribute a "module:attribute" reference names, importing its module."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def target_model(protocol: str) -> type[TargetBase] | None:
    """The target model of a registered protocol, or None for a name no one registered."""
    registration = PROTOCOLS.get(protocol)
    return load(registration.model) if registration else None
