"""CSTP framing: the packets that travel over the TLS stream once ``CONNECT`` is answered.

Every packet starts with the same 8 bytes: the magic ``STF``, version 1, the payload's length
(16 bits, big-endian), the packet type and a zero byte (draft-mavrogiannopoulos-openconnect §2.3).
"""

from __future__ import annotations

import struct
from enum import IntEnum

MAGIC = b"STF\x01"
HEADER = struct.Struct("!4sHBB")
HEADER_SIZE = HEADER.size
#: The payload byte of a DISCONNECT that means "the user disconnected": ocserv then ends the
#: session and forgets its cookie instead of keeping it for a reconnection.
USER_DISCONNECT = b"\xb0"


class PacketType(IntEnum):
    DATA = 0
    DPD_REQUEST = 3
    DPD_RESPONSE = 4
    DISCONNECT = 5
    KEEPALIVE = 7
    COMPRESSED = 8
    TERMINATE = 9


class CstpError(ValueError):
    """Bytes on the tunnel that are not a CSTP packet."""


def encode(kind: PacketType, payload: bytes = b"") -> bytes:
    """One packet of ``kind`` carrying ``payload``."""
    if len(payload) > 0xFFFF:
        raise ValueError("a CSTP payload is at most 65535 bytes")
    return HEADER.pack(MAGIC, len(payload), kind, 0) + payload


class CstpReader:
    """Splits the tunnel's byte stream into ``(type, payload)`` packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The packets ``data`` completes; raises CstpError at the first malformed header."""
        self._buffer += data
        packets = []
        while len(self._buffer) >= HEADER_SIZE:
            magic, length, kind, _ = HEADER.unpack_from(self._buffer)
            if magic != MAGIC:
                raise CstpError(f"a tunnel packet starts with {bytes(self._buffer[:4])!r}")
            if len(self._buffer) < HEADER_SIZE + length:
                break
            packets.append((kind, bytes(self._buffer[HEADER_SIZE : HEADER_SIZE + length])))
            del self._buffer[: HEADER_SIZE + length]
        return packets
