"""Protocol name → probe: the one place a new protocol is registered for the scheduler."""

from __future__ import annotations

from vpnwatch.probes import Probe
from vpnwatch.probes.control import DNS, TCP, TLS
from vpnwatch.probes.obfs4 import OBFS4
from vpnwatch.probes.openvpn import OPENVPN
from vpnwatch.probes.wireguard import WIREGUARD

PROBES: dict[str, Probe] = {
    "wireguard": WIREGUARD.probe(),
    "openvpn": OPENVPN.probe(),
    "obfs4": OBFS4.probe(),
    "tcp": TCP.probe(),
    "tls": TLS.probe(),
    "dns": DNS.probe(),
}
