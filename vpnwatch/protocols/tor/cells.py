"""Tor link cells (tor-spec §3-§5): framing, and the few payloads a probe sends or reads.

A cell is ``CircID | Command | Payload``. Fixed-length cells carry exactly 509 payload bytes;
variable-length ones (VERSIONS, and every command from 128 up) carry a two-byte length. CircID is
two bytes until the VERSIONS cells have settled a link protocol of 4 or more, then four.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

PAYLOAD_LENGTH = 509
HASH_LENGTH = 20
#: The link protocols this client speaks: 4 (the in-protocol handshake with four-byte circuit ids)
#: and 5 (link padding, which a client may ignore). Protocol 3 would make circuit ids depend on
#: comparing RSA keys; every relay since tor 0.2.4 speaks 4.
LINK_VERSIONS = (4, 5)
#: The circuit ids an initiator picks on links of protocol 4 and up have their top bit set.
INITIATOR_CIRCUIT_BIT = 0x8000_0000


class Command(IntEnum):
    PADDING = 0
    CREATE = 1
    CREATED = 2
    RELAY = 3
    DESTROY = 4
    CREATE_FAST = 5
    CREATED_FAST = 6
    VERSIONS = 7
    NETINFO = 8
    RELAY_EARLY = 9
    CREATE2 = 10
    CREATED2 = 11
    PADDING_NEGOTIATE = 12
    VPADDING = 128
    CERTS = 129
    AUTH_CHALLENGE = 130
    AUTHENTICATE = 131
    AUTHORIZE = 132


class MalformedCell(ValueError):
    """A cell, or a payload inside one, breaks the format tor-spec gives it."""


@dataclass(frozen=True, slots=True)
class Cell:
    circuit: int
    command: int
    payload: bytes


def is_variable(command: int) -> bool:
    return command == Command.VERSIONS or command >= 128


def circuit_id_length(link_version: int | None) -> int:
    """Two bytes before a link protocol is agreed and on protocols 3 and below; four after."""
    return 4 if link_version is not None and link_version >= 4 else 2


def encode(cell: Cell, link_version: int | None) -> bytes:
    """The cell's bytes on a link of ``link_version`` (None: before VERSIONS are exchanged)."""
    circuit = cell.circuit.to_bytes(circuit_id_length(link_version), "big")
    if is_variable(cell.command):
        return circuit + struct.pack(">BH", cell.command, len(cell.payload)) + cell.payload
    if len(cell.payload) > PAYLOAD_LENGTH:
        raise ValueError(f"a fixed-length payload is at most {PAYLOAD_LENGTH} bytes")
    return circuit + bytes([cell.command]) + cell.payload.ljust(PAYLOAD_LENGTH, b"\0")


class CellReader:
    """Cuts a byte stream into cells; the link version may change between cells."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.link_version: int | None = None

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_cell(self) -> Cell | None:
        """The next whole cell, or None until more bytes arrive."""
        id_length = circuit_id_length(self.link_version)
        header = id_length + 1
        if len(self._buffer) < header:
            return None
        command = self._buffer[id_length]
        if is_variable(command):
            if len(self._buffer) < header + 2:
                return None
            (length,) = struct.unpack_from(">H", self._buffer, header)
            start = header + 2
        else:
            length, start = PAYLOAD_LENGTH, header
        if len(self._buffer) < start + length:
            return None
        circuit = int.from_bytes(self._buffer[:id_length], "big")
        payload = bytes(self._buffer[start : start + length])
        del self._buffer[: start + length]
        return Cell(circuit, command, payload)


def versions_cell() -> Cell:
    return Cell(0, Command.VERSIONS, b"".join(struct.pack(">H", v) for v in LINK_VERSIONS))


def negotiate_version(payload: bytes) -> int:
    """The highest link protocol both sides list; MalformedCell when there is none."""
    if len(payload) % 2:
        raise MalformedCell("the VERSIONS cell has an odd length")
    offered = {int(version) for (version,) in struct.iter_unpack(">H", payload)}
    common = offered.intersection(LINK_VERSIONS)
    if not common:
        raise MalformedCell(
            f"the relay offers link protocols {sorted(offered)}, none of {list(LINK_VERSIONS)}"
        )
    return max(common)


def parse_certs(payload: bytes) -> dict[int, bytes]:
    """A CERTS cell's certificates by CertType; a type may appear only once."""
    if not payload:
        raise MalformedCell("the CERTS cell is empty")
    count, offset = payload[0], 1
    certificates: dict[int, bytes] = {}
    for _ in range(count):
        if offset + 3 > len(payload):
            raise MalformedCell("the CERTS cell ends inside a certificate header")
        kind, length = struct.unpack_from(">BH", payload, offset)
        offset += 3
        if offset + length > len(payload):
            raise MalformedCell(f"certificate type {kind} runs past the end of the CERTS cell")
        if kind in certificates:
            raise MalformedCell(f"the CERTS cell holds certificate type {kind} twice")
        certificates[kind] = payload[offset : offset + length]
        offset += length
    return certificates


def check_auth_challenge(payload: bytes) -> None:
    """An AUTH_CHALLENGE cell is a 32-byte challenge and a list of methods; a client that does
    not authenticate reads it only to be sure it is well formed."""
    if len(payload) < 34:
        raise MalformedCell("the AUTH_CHALLENGE cell is too short")
    (methods,) = struct.unpack_from(">H", payload, 32)
    if len(payload) < 34 + 2 * methods:
        raise MalformedCell("the AUTH_CHALLENGE cell lists more methods than it holds")


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class NetInfo:
    timestamp: int
    other_address: Address | None
    my_addresses: tuple[Address, ...]


def _read_address(payload: bytes, offset: int) -> tuple[Address | None, int]:
    if offset + 2 > len(payload):
        raise MalformedCell("the NETINFO cell ends inside an address")
    kind, length = payload[offset], payload[offset + 1]
    value = payload[offset + 2 : offset + 2 + length]
    if len(value) != length:
        raise MalformedCell("the NETINFO cell ends inside an address")
    address: Address | None = None
    if (kind, length) == (4, 4):
        address = ipaddress.IPv4Address(value)
    elif (kind, length) == (6, 16):
        address = ipaddress.IPv6Address(value)
    return address, offset + 2 + length  # other types and wrong lengths are ignored, as asked


def parse_netinfo(payload: bytes) -> NetInfo:
    if len(payload) < 4:
        raise MalformedCell("the NETINFO cell is too short")
    (timestamp,) = struct.unpack_from(">I", payload)
    other, offset = _read_address(payload, 4)
    if offset >= len(payload):
        raise MalformedCell("the NETINFO cell ends before its address count")
    count, offset = payload[offset], offset + 1
    mine = []
    for _ in range(count):
        address, offset = _read_address(payload, offset)
        if address is not None:
            mine.append(address)
    return NetInfo(timestamp, other, tuple(mine))


def netinfo_cell(other_address: Address | None) -> Cell:
    """A client's NETINFO: time 0 (clients send none, to avoid fingerprinting), the relay's
    address as we reached it (0.0.0.0 when we do not know it), and no addresses of our own."""
    address = other_address or ipaddress.IPv4Address(0)
    kind = 4 if address.version == 4 else 6
    body = struct.pack(">IBB", 0, kind, len(address.packed)) + address.packed + b"\0"
    return Cell(0, Command.NETINFO, body)


def kdf_tor(seed: bytes, length: int) -> bytes:
    """KDF-TOR (tor-spec §5.2.1): SHA-1(seed | 0) | SHA-1(seed | 1) | … cut to ``length``."""
    count = -(-length // HASH_LENGTH)
    blocks = (hashlib.sha1(seed + bytes([i])).digest() for i in range(count))  # noqa: S324 (the spec's)
    return b"".join(blocks)[:length]


def created_fast_verifies(sent: bytes, payload: bytes) -> bool:
    """Whether a CREATED_FAST answers the CREATE_FAST that carried ``sent``: its derivative key
    data KH must be the first bytes of KDF-TOR(X | Y)."""
    reply, kh = payload[:HASH_LENGTH], payload[HASH_LENGTH : 2 * HASH_LENGTH]
    return len(kh) == HASH_LENGTH and kdf_tor(sent + reply, HASH_LENGTH) == kh
