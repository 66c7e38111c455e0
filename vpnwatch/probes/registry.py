"""Protocol name → probe: the one place a new protocol is registered for the scheduler."""

from __future__ import annotations

from vpnwatch.probes import Probe

PROBES: dict[str, Probe] = {}
