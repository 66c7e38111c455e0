"""Data-channel exchanges with the real OpenVPN 2.6 server (``openvpn_data.json``).

Each capture holds what keyed the client's data channel with the server's PRF (both sides'
key-method 2 randomness and session ids), the cipher and framing the server pushed, and the data
packets both sides sent: the probe's echo requests and the server's replies. The server's
packets are the known answers: only keys derived exactly as OpenVPN derives them open them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VECTORS = Path(__file__).with_name("openvpn_data.json")


@dataclass(frozen=True)
class DataCapture:
    name: str
    cipher: str
    digest: str
    compression: str | None
    peer_id: int | None
    client_session: bytes
    server_session: bytes
    #: The client's pre-master, random1 and random2; the server's random1 and random2.
    client_source: bytes
    server_source: bytes
    local: str
    destination: str
    client_packets: tuple[bytes, ...]
    server_packets: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "cipher": self.cipher,
            "digest": self.digest,
            "compression": self.compression,
            "peer_id": self.peer_id,
            "client_session": self.client_session.hex(),
            "server_session": self.server_session.hex(),
            "client_source": self.client_source.hex(),
            "server_source": self.server_source.hex(),
            "local": self.local,
            "destination": self.destination,
            "client_packets": [packet.hex() for packet in self.client_packets],
            "server_packets": [packet.hex() for packet in self.server_packets],
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> DataCapture:
        def raw(name: str) -> bytes:
            return bytes.fromhex(str(item[name]))

        def packets(name: str) -> tuple[bytes, ...]:
            values = item[name]
            assert isinstance(values, list)
            return tuple(bytes.fromhex(value) for value in values)

        peer_id = item["peer_id"]
        compression = item["compression"]
        return cls(
            name=str(item["name"]),
            cipher=str(item["cipher"]),
            digest=str(item["digest"]),
            compression=None if compression is None else str(compression),
            peer_id=None if peer_id is None else int(str(peer_id)),
            client_session=raw("client_session"),
            server_session=raw("server_session"),
            client_source=raw("client_source"),
            server_source=raw("server_source"),
            local=str(item["local"]),
            destination=str(item["destination"]),
            client_packets=packets("client_packets"),
            server_packets=packets("server_packets"),
        )


@cache
def data_captures() -> dict[str, DataCapture]:
    """The captures in ``openvpn_data.json``, by name."""
    document = json.loads(VECTORS.read_text())
    return {item.name: item for item in map(DataCapture.from_json, document["captures"])}
