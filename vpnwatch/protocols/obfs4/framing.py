"""obfs4 data frames: NaCl secretboxes behind SipHash-obfuscated lengths, carrying packets.

A frame on the wire is ``length (2, XORed with a mask) | secretbox(packet)``. The mask is the first
two bytes of a SipHash-2-4 output-feedback stream; the secretbox nonce is a fixed 16-byte prefix
and a big-endian frame counter starting at 1. Neither is sent: both ends step them in lockstep.
A packet is ``type (1) | payload length (2) | payload | zero padding``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.secret
from siphash24 import siphash24

from vpnwatch.protocols.obfs4.errors import MalformedFrame

#: The largest frame, length field included: a 1500-byte MTU less TCP/IP headers.
MAX_SEGMENT_LENGTH = 1448
LENGTH_FIELD_LENGTH = 2
TAG_LENGTH = nacl.secret.SecretBox.MACBYTES
FRAME_OVERHEAD = LENGTH_FIELD_LENGTH + TAG_LENGTH
MAX_FRAME_PAYLOAD_LENGTH = MAX_SEGMENT_LENGTH - FRAME_OVERHEAD
MIN_BOX_LENGTH = TAG_LENGTH
MAX_BOX_LENGTH = MAX_SEGMENT_LENGTH - LENGTH_FIELD_LENGTH

PACKET_HEADER_LENGTH = 3
MAX_PACKET_PAYLOAD_LENGTH = MAX_FRAME_PAYLOAD_LENGTH - PACKET_HEADER_LENGTH

BOX_KEY_LENGTH = 32
NONCE_PREFIX_LENGTH = 16
SIPHASH_KEY_LENGTH = 16
SIPHASH_IV_LENGTH = 8
#: Keys for one direction: secretbox key, nonce prefix, SipHash key and IV.
DIRECTION_KEY_LENGTH = BOX_KEY_LENGTH + NONCE_PREFIX_LENGTH + SIPHASH_KEY_LENGTH + SIPHASH_IV_LENGTH
_MAX_COUNTER = 2**64 - 1


class PacketType(enum.IntEnum):
    PAYLOAD = 0
    PRNG_SEED = 1


@dataclass(frozen=True, slots=True)
class Packet:
    kind: int
    payload: bytes


class LengthMask:
    """The SipHash-2-4 output-feedback stream whose blocks mask frame lengths.

    As in the reference code, the SipHash state is never reset: each block is the hash of the IV
    and every block before it, not of the previous block alone as the specification's prose reads.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._hash = siphash24(key=key)
        self._block = iv

    def next(self) -> int:
        self._hash.update(self._block)
        self._block = self._hash.digest()
        return int.from_bytes(self._block[:2], "big")


@dataclass
class _DirectionState:
    """The secretbox and the two streams (nonce counter, length mask) of one direction."""

    keys: bytes = field(repr=False)
    box: nacl.secret.SecretBox = field(init=False, repr=False)
    mask: LengthMask = field(init=False, repr=False)
    counter: int = field(init=False, default=1)

    def __post_init__(self) -> None:
        if len(self.keys) != DIRECTION_KEY_LENGTH:
            raise ValueError(f"direction keys are {DIRECTION_KEY_LENGTH} bytes")
        box_key, rest = self.keys[:BOX_KEY_LENGTH], self.keys[BOX_KEY_LENGTH:]
        self.box = nacl.secret.SecretBox(box_key)
        siphash_key = rest[NONCE_PREFIX_LENGTH : NONCE_PREFIX_LENGTH + SIPHASH_KEY_LENGTH]
        self.mask = LengthMask(siphash_key, rest[NONCE_PREFIX_LENGTH + SIPHASH_KEY_LENGTH :])

    def next_nonce(self) -> bytes:
        if self.counter > _MAX_COUNTER:
            raise MalformedFrame("the frame counter would wrap; the session must end")
        prefix = self.keys[BOX_KEY_LENGTH : BOX_KEY_LENGTH + NONCE_PREFIX_LENGTH]
        nonce = prefix + self.counter.to_bytes(8, "big")
        self.counter += 1
        return nonce


class FrameEncoder:
    """Seals payloads into frames for one direction of a session."""

    def __init__(self, keys: bytes) -> None:
        self._state = _DirectionState(keys)

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > MAX_FRAME_PAYLOAD_LENGTH:
            raise ValueError(f"a frame carries at most {MAX_FRAME_PAYLOAD_LENGTH} bytes")
        box = self._state.box.encrypt(payload, self._state.next_nonce()).ciphertext
        return struct.pack(">H", len(box) ^ self._state.mask.next()) + box

    def encode_packet(self, kind: int, payload: bytes, padding: int = 0) -> bytes:
        if len(payload) + padding > MAX_PACKET_PAYLOAD_LENGTH:
            raise ValueError(f"a packet carries at most {MAX_PACKET_PAYLOAD_LENGTH} bytes")
        header = struct.pack(">BH", kind, len(payload))
        return self.encode(header + payload + bytes(padding))

    def encode_data(self, data: bytes) -> bytes:
        """``data`` as payload packets, as many frames as it takes."""
        step = MAX_PACKET_PAYLOAD_LENGTH
        return b"".join(
            self.encode_packet(PacketType.PAYLOAD, data[i : i + step])
            for i in range(0, len(data), step)
        )


class FrameDecoder:
    """Opens the frames of one direction of a session, from a byte stream fed in any pieces."""

    def __init__(self, keys: bytes) -> None:
        self._state = _DirectionState(keys)
        self._buffer = bytearray()
        self._box_length: int | None = None

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_packet(self) -> Packet | None:
        """The next whole packet, or None until more data arrives."""
        if self._box_length is None:
            if len(self._buffer) < LENGTH_FIELD_LENGTH:
                return None
            (masked,) = struct.unpack_from(">H", self._buffer)
            length = masked ^ self._state.mask.next()
            if not MIN_BOX_LENGTH <= length <= MAX_BOX_LENGTH:
                raise MalformedFrame(
                    f"frame length {length} is outside {MIN_BOX_LENGTH}..{MAX_BOX_LENGTH}"
                )
            del self._buffer[:LENGTH_FIELD_LENGTH]
            self._box_length = length
        if len(self._buffer) < self._box_length:
            return None
        box = bytes(self._buffer[: self._box_length])
        del self._buffer[: self._box_length]
        self._box_length = None
        try:
            plaintext = self._state.box.decrypt(box, self._state.next_nonce())
        except nacl.exceptions.CryptoError:
            raise MalformedFrame("a frame failed authentication") from None
        return _parse_packet(plaintext)


def _parse_packet(plaintext: bytes) -> Packet:
    if len(plaintext) < PACKET_HEADER_LENGTH:
        raise MalformedFrame(f"a {len(plaintext)}-byte packet is shorter than its header")
    kind, length = struct.unpack_from(">BH", plaintext)
    if length > len(plaintext) - PACKET_HEADER_LENGTH:
        raise MalformedFrame(f"a packet claims {length} bytes of payload but has fewer")
    return Packet(kind, plaintext[PACKET_HEADER_LENGTH : PACKET_HEADER_LENGTH + length])
