"""Shadowsocks on the driver: a :class:`ShadowsocksClient` per probe, over its plugin's layers."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

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


def plugin_layers(
    target: ShadowsocksTarget,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
    unix_time: float | None = None,
) -> LayerStack:
    """The layers the target's SIP003 plugin puts under the Shadowsocks stream.

    ``random_bytes`` and ``unix_time`` stand in for the plugins' randomness and clock.
    """
    mode = target.plugin_mode
    layers: list[Layer] = []
    if mode is None:
        pass
    elif mode.kind == "obfs-http":
        layers = [ObfsHttpLayer(mode.host, target.port, uri=mode.path, random_bytes=random_bytes)]
    elif mode.kind == "obfs-tls":
        now = time.time() if unix_time is None else unix_time
        layers = [ObfsTlsLayer(mode.host, unix_time=now, random_bytes=random_bytes)]
    else:
        websocket = WebSocketLayer(mode.host, mode.path, random_bytes=random_bytes)
        layers = [*([MuxCoolLayer()] if mode.mux else []), websocket]
        if mode.kind == "websocket-tls":
            layers.append(TlsLayer(client_context(target.ca), mode.host))
    return LayerStack(layers)


def shadowsocks_client(
    target: ShadowsocksTarget,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
    unix_time: float | None = None,
) -> ShadowsocksClient:
    """The machine for one probe of ``target``; tests and captures fix its randomness."""
    layers = plugin_layers(target, random_bytes=random_bytes, unix_time=unix_time)
    return ShadowsocksClient(
        CIPHERS[target.method],
        _key(target.method, target.password.get_secret_value()),
        target.relay_destination,
        layers=layers,
        random_bytes=random_bytes,
    )


def _client(target: ShadowsocksTarget) -> ShadowsocksClient:
    return shadowsocks_client(target)


SHADOWSOCKS: ProbeSpec[ShadowsocksTarget] = ProbeSpec(machine=_client)
