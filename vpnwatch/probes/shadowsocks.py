"""Shadowsocks on the driver: a :class:`ShadowsocksClient` per probe, over its plugin's layers."""

from __future__ import annotations

import functools
import time

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.tlscontext import client_context
from vpnwatch.protocols.layers.mux import MuxCoolLayer
from vpnwatch.protocols.layers.obfs import ObfsHttpLayer, ObfsTlsLayer
from vpnwatch.protocols.layers.stack import Layer, LayerStack
from vpnwatch.protocols.layers.tls import TlsLayer
from vpnwatch.protocols.layers.websocket import WebSocketLayer
from vpnwatch.protocols.shadowsocks.aead import CIPHERS, password_key
from vpnwatch.protocols.shadowsocks.client import ShadowsocksClient
from vpnwatch.targets.shadowsocks import ShadowsocksTarget


@functools.lru_cache(maxsize=1024)
def _key(method: str, password: str) -> bytes:
    return password_key(password.encode(), CIPHERS[method].key_length)


def plugin_layers(target: ShadowsocksTarget) -> LayerStack:
    """The layers the target's SIP003 plugin puts under the Shadowsocks stream."""
    mode = target.plugin_mode
    layers: list[Layer] = []
    if mode is None:
        pass
    elif mode.kind == "obfs-http":
        layers = [ObfsHttpLayer(mode.host, target.port, uri=mode.path)]
    elif mode.kind == "obfs-tls":
        layers = [ObfsTlsLayer(mode.host, unix_time=time.time())]
    else:
        layers = [*([MuxCoolLayer()] if mode.mux else []), WebSocketLayer(mode.host, mode.path)]
        if mode.kind == "websocket-tls":
            layers.append(TlsLayer(client_context(target.ca), mode.host))
    return LayerStack(layers)


def _client(target: ShadowsocksTarget) -> ShadowsocksClient:
    cipher = CIPHERS[target.method]
    return ShadowsocksClient(
        cipher,
        _key(target.method, target.password.get_secret_value()),
        target.relay_destination,
        layers=plugin_layers(target),
    )


SHADOWSOCKS: ProbeSpec[ShadowsocksTarget] = ProbeSpec(machine=_client)
