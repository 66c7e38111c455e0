"""Protocol name → probe: the one place a new protocol is registered for the scheduler."""

from __future__ import annotations

from vpnwatch.probes import Probe
from vpnwatch.probes.control import probe_dns, probe_tcp, probe_tls
from vpnwatch.probes.obfs4 import probe_obfs4
from vpnwatch.probes.openvpn import probe_openvpn
from vpnwatch.probes.wireguard import probe_wireguard

PROBES: dict[str, Probe] = {
    "wireguard": probe_wireguard,
    "openvpn": probe_openvpn,
    "obfs4": probe_obfs4,
    "tcp": probe_tcp,
    "tls": probe_tls,
    "dns": probe_dns,
}
