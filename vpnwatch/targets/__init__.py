"""Target models: one per protocol, looked up by the ``protocol`` field of inline targets."""

from __future__ import annotations

from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget
from vpnwatch.targets.ikev2 import IKEv2Target
from vpnwatch.targets.obfs4 import Obfs4Target
from vpnwatch.targets.openvpn import OpenVPNTarget
from vpnwatch.targets.wireguard import WireGuardTarget

#: Protocol name → the model its inline targets are validated against.
TARGET_MODELS: dict[str, type[TargetBase]] = {
    "wireguard": WireGuardTarget,
    "openvpn": OpenVPNTarget,
    "obfs4": Obfs4Target,
    "ikev2": IKEv2Target,
    "tcp": TcpTarget,
    "tls": TlsTarget,
    "dns": DnsTarget,
}

__all__ = [
    "TARGET_MODELS",
    "DnsTarget",
    "IKEv2Target",
    "Obfs4Target",
    "OpenVPNTarget",
    "TargetBase",
    "TcpTarget",
    "TlsTarget",
    "WireGuardTarget",
]
