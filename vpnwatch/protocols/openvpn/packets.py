"""OpenVPN control-channel packets: the opcode byte, session ids, ACK arrays and message ids.

A control packet on the wire is ``header || body`` where the header is the opcode/key-id byte and
the sender's 8-byte session id, and the body (before any tls-auth/tls-crypt wrapping) is::

    ack_count:u8 | acked message ids:u32 * ack_count | remote session id:8 (only if ack_count)
    | message id:u32 (absent in P_ACK_V1) | payload

The wrappers in :mod:`.wrappers` authenticate or encrypt the body and keep the header in clear.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

SESSION_ID_SIZE = 8
MESSAGE_ID_SIZE = 4
HEADER_SIZE = 1 + SESSION_ID_SIZE
#: OpenVPN stores at most this many ACKs per packet (RELIABLE_ACK_SIZE); more is malformed.
MAX_ACKS = 8
#: Default --tls-mtu: no control packet we send, wrapping included, is larger.
TLS_MTU = 1250
#: Largest packet accepted from the network. Control packets are bounded by the peer's tls-mtu,
#: so anything much larger is not an OpenVPN control packet.
MAX_PACKET_SIZE = 2048
#: TCP carries each packet behind a 16-bit big-endian length.
TCP_LENGTH_SIZE = 2

_KEY_ID_MASK = 0x07
_OPCODE_SHIFT = 3


class Opcode(IntEnum):
    """Packet types (the opcode occupies the top five bits of the first byte)."""

    CONTROL_SOFT_RESET_V1 = 3
    CONTROL_V1 = 4
    ACK_V1 = 5
    DATA_V1 = 6
    CONTROL_HARD_RESET_CLIENT_V2 = 7
    CONTROL_HARD_RESET_SERVER_V2 = 8
    DATA_V2 = 9
    CONTROL_HARD_RESET_CLIENT_V3 = 10
    CONTROL_WKC_V1 = 11


#: Opcodes that carry a reliable message (a message id and payload) rather than ACKs only.
RELIABLE_OPCODES = frozenset(
    {
        Opcode.CONTROL_SOFT_RESET_V1,
        Opcode.CONTROL_V1,
        Opcode.CONTROL_HARD_RESET_CLIENT_V2,
        Opcode.CONTROL_HARD_RESET_SERVER_V2,
        Opcode.CONTROL_HARD_RESET_CLIENT_V3,
        Opcode.CONTROL_WKC_V1,
    }
)


class PacketError(ValueError):
    """A packet from the network that is truncated, oversized, malformed or fails authentication.

    The one error this package raises for bad input: callers drop the packet (anyone can send a
    UDP datagram) and count it, and never need to catch anything else.
    """


class AuthenticationError(PacketError):
    """A packet whose tls-auth HMAC or tls-crypt tag does not verify: sent with another key."""


@dataclass(frozen=True, slots=True)
class ControlPacket:
    """One decoded (unwrapped) control-channel packet."""

    opcode: Opcode
    session_id: bytes
    acks: tuple[int, ...] = ()
    remote_session_id: bytes | None = None
    message_id: int | None = None
    payload: bytes = b""
    key_id: int = 0

    def __post_init__(self) -> None:
        if len(self.session_id) != SESSION_ID_SIZE:
            raise ValueError("a session id is 8 bytes")
        if len(self.acks) > MAX_ACKS:
            raise ValueError(f"at most {MAX_ACKS} ACKs fit in one packet")
        if bool(self.acks) != (self.remote_session_id is not None):
            raise ValueError("ACKs travel with the remote session id, and only with them")
        if (self.opcode in RELIABLE_OPCODES) != (self.message_id is not None):
            raise ValueError(
                f"{self.opcode.name} {'needs' if self.message_id is None else 'has no'} message id"
            )
        if self.opcode is Opcode.ACK_V1 and not self.acks:
            raise ValueError("an ACK_V1 packet acknowledges at least one message")
        if not 0 <= self.key_id <= _KEY_ID_MASK:
            raise ValueError("key id is 0 to 7")

    @property
    def header(self) -> bytes:
        """The part every wrapper leaves in clear: opcode/key-id byte and session id."""
        return bytes([self.opcode << _OPCODE_SHIFT | self.key_id]) + self.session_id

    @property
    def body(self) -> bytes:
        """Everything after the header, as it is before wrapping."""
        parts = [bytes([len(self.acks)])]
        parts += [struct.pack("!I", ack) for ack in self.acks]
        if self.remote_session_id is not None:
            parts.append(self.remote_session_id)
        if self.message_id is not None:
            parts.append(struct.pack("!I", self.message_id))
        parts.append(self.payload)
        return b"".join(parts)

    def encode(self) -> bytes:
        """The unwrapped packet (what goes on the wire without tls-auth or tls-crypt)."""
        return self.header + self.body


def body_overhead(ack_count: int, *, reliable: bool = True) -> int:
    """Bytes an unwrapped body spends before its payload."""
    return (
        1
        + MESSAGE_ID_SIZE * ack_count
        + (SESSION_ID_SIZE if ack_count else 0)
        + (MESSAGE_ID_SIZE if reliable else 0)
    )


def split_header(packet: bytes) -> tuple[Opcode, int, bytes, bytes]:
    """Split ``packet`` into (opcode, key id, session id, rest)."""
    if len(packet) < HEADER_SIZE:
        raise PacketError(f"packet of {len(packet)} bytes is shorter than a header")
    if len(packet) > MAX_PACKET_SIZE:
        raise PacketError(f"packet of {len(packet)} bytes is larger than any control packet")
    try:
        opcode = Opcode(packet[0] >> _OPCODE_SHIFT)
    except ValueError:
        raise PacketError(f"unknown opcode {packet[0] >> _OPCODE_SHIFT}") from None
    return opcode, packet[0] & _KEY_ID_MASK, packet[1:HEADER_SIZE], packet[HEADER_SIZE:]


def parse_body(opcode: Opcode, key_id: int, session_id: bytes, body: bytes) -> ControlPacket:
    """Decode an unwrapped body that followed the given header fields."""
    if opcode not in RELIABLE_OPCODES and opcode is not Opcode.ACK_V1:
        raise PacketError(f"{opcode.name} is not a control packet")
    if not body:
        raise PacketError("packet ends before its ACK count")
    count = body[0]
    if count > MAX_ACKS:
        raise PacketError(f"packet claims {count} ACKs, more than {MAX_ACKS}")
    reliable = opcode in RELIABLE_OPCODES
    needed = body_overhead(count, reliable=reliable)
    if len(body) < needed:
        raise PacketError(
            f"packet of {len(body)} body bytes is shorter than its {needed}-byte fields"
        )
    acks = struct.unpack_from(f"!{count}I", body, 1)
    offset = 1 + MESSAGE_ID_SIZE * count
    remote = body[offset : offset + SESSION_ID_SIZE] if count else None
    offset += SESSION_ID_SIZE if count else 0
    message_id = struct.unpack_from("!I", body, offset)[0] if reliable else None
    payload = body[needed:]
    if not reliable and payload:
        raise PacketError("ACK_V1 packet carries a payload")
    try:
        return ControlPacket(opcode, session_id, acks, remote, message_id, payload, key_id)
    except ValueError as exc:
        raise PacketError(str(exc)) from None


def decode(packet: bytes) -> ControlPacket:
    """Decode an unwrapped packet."""
    return parse_body(*split_header(packet))


def frame_tcp(packet: bytes) -> bytes:
    """Prefix ``packet`` with its 16-bit length, as OpenVPN does over TCP."""
    return struct.pack("!H", len(packet)) + packet


class TcpDeframer:
    """Reassembles length-prefixed packets from a TCP byte stream, whatever the read sizes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the packets now complete.

        A length of zero or beyond :data:`MAX_PACKET_SIZE` raises :class:`PacketError`: the stream
        cannot be resynchronised after it, so the caller must give up on the connection.
        """
        self._buffer += data
        packets = []
        while len(self._buffer) >= TCP_LENGTH_SIZE:
            (length,) = struct.unpack_from("!H", self._buffer)
            if not 0 < length <= MAX_PACKET_SIZE:
                raise PacketError(f"TCP frame of {length} bytes cannot hold a control packet")
            if len(self._buffer) < TCP_LENGTH_SIZE + length:
                break
            packets.append(bytes(self._buffer[TCP_LENGTH_SIZE : TCP_LENGTH_SIZE + length]))
            del self._buffer[: TCP_LENGTH_SIZE + length]
        return packets
