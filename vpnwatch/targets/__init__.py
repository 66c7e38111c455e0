"""Target models: one per protocol, looked up by the ``protocol`` field of inline targets."""

from __future__ import annotations

from vpnwatch.targets.anyconnect import AnyConnectTarget
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget
from vpnwatch.targets.obfs4 import Obfs4Target
from vpnwatch.targets.openvpn import OpenVPNTarget
from vpnwatch.targets.wireguard import WireGuardTarget

#: Protocol name → the model its inline targets are validated against.
TARGET_MODELS: dict[str, type[TargetBase]] = {
    "wireguard": WireGuardTarget,
    "openvpn": OpenVPNTarget,
    "obfs4": Obfs4Target,
    "anyconnect": AnyConnectTarget,
    "tcp": TcpTarget,
    "tls": TlsTarget,
    "dns": DnsTarget,
}

__all__ = [
    "TARGET_MODELS",
    "AnyConnectTarget",
    "DnsTarget",
    "Obfs4Target",
    "OpenVPNTarget",
    "TargetBase",
    "TcpTarget",
    "TlsTarget",
    "WireGuardTarget",
]
