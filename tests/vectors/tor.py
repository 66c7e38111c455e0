"""Tor link handshakes with the real tor (``tor.json``), and a reading of Tor's cells written here
from tor-spec, owing nothing to vpnwatch.

A capture holds what passed in the clear inside TLS between :class:`TorLinkClient` and a real tor
bridge reached through obfs4proxy: every cell each side sent, the certificate the relay presented
in the TLS handshake, the relay's fingerprint, the Unix time, the client's draws of randomness
(the circuit id and CREATE_FAST's key material). TLS itself is not replayed (OpenSSL draws its own
randomness, which no caller can inject); the cells are, byte for byte.

:func:`split_cells` and :func:`join_cells` cut and rebuild the server's bytes so that tampering
tests change the real relay's cells, not cells our own code made.
"""

from __future__ import annotations

import ipaddress
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.vectors.draws import replay_draws
from vpnwatch.protocols.tor.link import TorLinkClient

VECTORS = Path(__file__).with_name("tor.json")

# tor-spec §3: VERSIONS (7) and commands from 128 up have a two-byte length; the rest carry 509
# bytes. The first VERSIONS cell has a two-byte circuit id, every cell after it (link protocol 4
# and up) a four-byte one.
VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO, CREATED_FAST, DESTROY = 7, 129, 130, 8, 6, 4
FIXED_PAYLOAD = 509


@dataclass(frozen=True)
class RawCell:
    circuit: int
    command: int
    payload: bytes


def split_cells(data: bytes) -> list[RawCell]:
    """The cells in ``data``, a stream that starts with a VERSIONS cell; a partial one at the end
    is left out."""
    cells, offset, id_length = [], 0, 2
    while offset + id_length + 3 <= len(data):
        circuit = int.from_bytes(data[offset : offset + id_length], "big")
        command = data[offset + id_length]
        offset += id_length + 1
        if command == VERSIONS or command >= 128:
            (length,) = struct.unpack_from(">H", data, offset)
            offset += 2
        else:
            length = FIXED_PAYLOAD
        cells.append(RawCell(circuit, command, data[offset : offset + length]))
        offset += length
        id_length = 4
    return cells


def join_cells(cells: list[RawCell]) -> bytes:
    """The bytes of ``cells``, the first with a two-byte circuit id."""
    out = []
    for index, cell in enumerate(cells):
        circuit = cell.circuit.to_bytes(2 if index == 0 else 4, "big")
        if cell.command == VERSIONS or cell.command >= 128:
            out.append(circuit + struct.pack(">BH", cell.command, len(cell.payload)) + cell.payload)
        else:
            out.append(circuit + bytes([cell.command]) + cell.payload.ljust(FIXED_PAYLOAD, b"\0"))
    return b"".join(out)


def split_certs(payload: bytes) -> dict[int, bytes]:
    """A CERTS payload's certificates by type (tor-spec §4.2)."""
    certs, offset = {}, 1
    for _ in range(payload[0]):
        kind, length = struct.unpack_from(">BH", payload, offset)
        certs[kind] = payload[offset + 3 : offset + 3 + length]
        offset += 3 + length
    return certs


def join_certs(certs: dict[int, bytes]) -> bytes:
    parts = [bytes([len(certs)])]
    for kind, cert in certs.items():
        parts.append(struct.pack(">BH", kind, len(cert)) + cert)
    return b"".join(parts)


@dataclass(frozen=True)
class TorCapture:
    name: str
    fingerprint: str
    unix_time: float
    peer_address: str
    tls_certificate: bytes
    draws: tuple[bytes, ...]
    transcript: tuple[tuple[str, bytes], ...]

    def sent(self, side: str) -> bytes:
        """Everything ``side`` ("client" or "server") sent, in order."""
        return b"".join(data for who, data in self.transcript if who == side)

    def server_cells(self) -> list[RawCell]:
        return split_cells(self.sent("server"))

    def certs(self) -> dict[int, bytes]:
        [cell] = [cell for cell in self.server_cells() if cell.command == CERTS]
        return split_certs(cell.payload)

    def random_bytes(self) -> Callable[[int], bytes]:
        return replay_draws(self.name, self.draws)

    def client(self, **changes: object) -> TorLinkClient:
        """A link client given the recorded inputs, any of them replaced by ``changes``."""
        inputs: dict[str, object] = {
            "fingerprint": self.fingerprint,
            "tls_certificate": self.tls_certificate,
            "unix_time": self.unix_time,
            "peer_address": ipaddress.ip_address(self.peer_address),
            "random_bytes": self.random_bytes(),
        }
        inputs.update(changes)
        fingerprint, certificate = inputs.pop("fingerprint"), inputs.pop("tls_certificate")
        return TorLinkClient(fingerprint, certificate, **inputs)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "unix_time": self.unix_time,
            "peer_address": self.peer_address,
            "tls_certificate": self.tls_certificate.hex(),
            "draws": [draw.hex() for draw in self.draws],
            "transcript": [[side, data.hex()] for side, data in self.transcript],
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> TorCapture:
        return cls(
            name=str(item["name"]),
            fingerprint=str(item["fingerprint"]),
            unix_time=float(str(item["unix_time"])),
            peer_address=str(item["peer_address"]),
            tls_certificate=bytes.fromhex(str(item["tls_certificate"])),
            draws=tuple(bytes.fromhex(draw) for draw in item["draws"]),  # type: ignore[attr-defined]
            transcript=tuple(
                (side, bytes.fromhex(data))
                for side, data in item["transcript"]  # type: ignore[attr-defined]
            ),
        )


@cache
def captures() -> dict[str, TorCapture]:
    document = json.loads(VECTORS.read_text())
    return {item["name"]: TorCapture.from_json(item) for item in document["captures"]}
