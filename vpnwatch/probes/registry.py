"""Protocol name → probe: the one place a new protocol is registered for the scheduler."""

from __future__ import annotations

from vpnwatch.probes import Probe
from vpnwatch.probes.control import probe_dns, probe_tcp, probe_tls

PROBES: dict[str, Probe] = {
    "tcp": probe_tcp,
    "tls": probe_tls,
    "dns": probe_dns,
}
