"""Trojan on the driver: a :class:`TrojanClient` per probe, over TLS to the server's name."""

from __future__ import annotations

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.tlscontext import client_context
from vpnwatch.protocols.layers.stack import LayerStack
from vpnwatch.protocols.layers.tls import TlsLayer
from vpnwatch.protocols.trojan import TrojanClient
from vpnwatch.targets.trojan import TrojanTarget


def _client(target: TrojanTarget) -> TrojanClient:
    tls = TlsLayer(client_context(target.ca), target.server_name or target.host)
    return TrojanClient(
        target.password.get_secret_value(), target.relay_destination, LayerStack([tls])
    )


TROJAN: ProbeSpec[TrojanTarget] = ProbeSpec(machine=_client)
