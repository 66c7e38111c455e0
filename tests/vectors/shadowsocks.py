"""Exchanges with the real ss-server (``shadowsocks.json``), with and without its plugins.

A capture holds every input the client was given — the server's password and method, the
plugin options, the destination, every draw of randomness (salt, echo payload, plugin nonces)
and the wall-clock time obfs=tls puts in its hello — and every byte each side sent. A client
built from it must send the same bytes and accept the same answer: ss-server's, obfs-server's
and v2ray-plugin's own bytes, replayed with no network. (v2ray-plugin over TLS is not captured:
OpenSSL lets no one fix its randomness.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.vectors.draws import replay_draws
from vpnwatch.probes.shadowsocks import shadowsocks_client
from vpnwatch.protocols.shadowsocks.client import ShadowsocksClient
from vpnwatch.targets.shadowsocks import ShadowsocksTarget

VECTORS = Path(__file__).with_name("shadowsocks.json")


@dataclass(frozen=True)
class ShadowsocksCapture:
    """One client's conversation with the real server, with every input it was given."""

    name: str
    method: str
    password: str
    plugin: str
    plugin_opts: str
    destination: str
    port: int
    unix_time: float
    draws: tuple[bytes, ...]
    transcript: tuple[tuple[str, bytes], ...]

    def target(self) -> ShadowsocksTarget:
        return ShadowsocksTarget(
            name=self.name,
            host="198.18.0.2",
            port=self.port,
            method=self.method,  # type: ignore[arg-type]
            password=self.password,  # type: ignore[arg-type]
            plugin=self.plugin,
            plugin_opts=self.plugin_opts,
            destination=self.destination,
        )

    def client(self) -> ShadowsocksClient:
        """A client fed the capture's inputs, so it sends exactly what was sent then."""
        return shadowsocks_client(
            self.target(),
            random_bytes=replay_draws(self.name, self.draws),
            unix_time=self.unix_time,
        )

    def sent(self, side: str) -> bytes:
        return b"".join(data for who, data in self.transcript if who == side)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "password": self.password,
            "plugin": self.plugin,
            "plugin_opts": self.plugin_opts,
            "destination": self.destination,
            "port": self.port,
            "unix_time": self.unix_time,
            "draws": [draw.hex() for draw in self.draws],
            "transcript": [[side, data.hex()] for side, data in self.transcript],
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> ShadowsocksCapture:
        return cls(
            name=item["name"],
            method=item["method"],
            password=item["password"],
            plugin=item["plugin"],
            plugin_opts=item["plugin_opts"],
            destination=item["destination"],
            port=item["port"],
            unix_time=item["unix_time"],
            draws=tuple(bytes.fromhex(draw) for draw in item["draws"]),
            transcript=tuple((side, bytes.fromhex(data)) for side, data in item["transcript"]),
        )


@cache
def captures() -> dict[str, ShadowsocksCapture]:
    document = json.loads(VECTORS.read_text())
    return {item["name"]: ShadowsocksCapture.from_json(item) for item in document["captures"]}
