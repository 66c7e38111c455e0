"""Handshakes with the real wireguard-go (``wireguard.json``), with every input our side was given.

A capture holds the test-only keys made for it, every draw of randomness the initiator took (per
initiation: the ephemeral private key, the sender index, the retransmission jitter), every
timestamp it was issued, and each datagram either side sent, in order. The server's datagrams
are wireguard-go's own, so an initiator given the same inputs must send the same bytes and accept
the same answers: a replay that agrees with the real peer, not with a responder of our making.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.vectors.draws import replay_draws
from vpnwatch.protocols.wireguard import NoiseHandshake, WireGuardInitiator

VECTORS = Path(__file__).with_name("wireguard.json")

Transcript = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class WireGuardCapture:
    """One probe's conversation with the real server, and what the initiator was given."""

    name: str
    client_private: bytes
    server_private: bytes
    server_public: bytes
    preshared_key: bytes | None
    draws: tuple[bytes, ...]
    timestamps: tuple[bytes, ...]
    #: ("client" | "server", datagram), in the order they were sent and received.
    transcript: Transcript

    def sent(self, side: str) -> list[bytes]:
        """Every datagram ``side`` ("client" or "server") sent, in order."""
        return [data for who, data in self.transcript if who == side]

    def initiator(self) -> WireGuardInitiator:
        """An initiator given the recorded inputs, as the capture's was."""
        handshake = NoiseHandshake(self.client_private, self.server_public, self.preshared_key)
        return WireGuardInitiator(
            handshake,
            timestamps=iter(self.timestamps).__next__,
            random_bytes=replay_draws(self.name, self.draws),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "client_private": self.client_private.hex(),
            "server_private": self.server_private.hex(),
            "server_public": self.server_public.hex(),
            "preshared_key": None if self.preshared_key is None else self.preshared_key.hex(),
            "draws": [draw.hex() for draw in self.draws],
            "timestamps": [stamp.hex() for stamp in self.timestamps],
            "transcript": [[side, data.hex()] for side, data in self.transcript],
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> WireGuardCapture:
        def raw(name: str) -> bytes:
            return bytes.fromhex(str(item[name]))

        def raw_list(name: str) -> tuple[bytes, ...]:
            values = item[name]
            assert isinstance(values, list)
            return tuple(bytes.fromhex(value) for value in values)

        transcript = item["transcript"]
        assert isinstance(transcript, list)
        return cls(
            name=str(item["name"]),
            client_private=raw("client_private"),
            server_private=raw("server_private"),
            server_public=raw("server_public"),
            preshared_key=None if item["preshared_key"] is None else raw("preshared_key"),
            draws=raw_list("draws"),
            timestamps=raw_list("timestamps"),
            transcript=tuple((str(side), bytes.fromhex(data)) for side, data in transcript),
        )


@cache
def captures() -> dict[str, WireGuardCapture]:
    """The captures in ``wireguard.json``, by name."""
    document = json.loads(VECTORS.read_text())
    return {item["name"]: WireGuardCapture.from_json(item) for item in document["captures"]}
