"""Control-channel wrappers: none, tls-auth, tls-crypt and tls-crypt-v2.

A wrapper turns a :class:`ControlPacket` into wire bytes and back. tls-auth appends an HMAC, and
tls-crypt encrypts and authenticates the body, each with its own replay-protected packet id and a
timestamp (``packet id:u32 | unix time:u32``). A server with either drops every packet that fails
the check without answering, so a wrong or missing key shows up as silence.

Key files hold 256 bytes in four 64-byte slots: cipher 0, HMAC 0, cipher 1, HMAC 1. Direction 0
sends with slot set 0 and receives with set 1, direction 1 the reverse, and "bidirectional" uses
set 0 both ways. tls-crypt clients always use direction 1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vpnwatch.protocols.openvpn.packets import (
    HEADER_SIZE,
    AuthenticationError,
    ControlPacket,
    Opcode,
    PacketError,
    parse_body,
    split_header,
)

STATIC_KEY_SIZE = 256
_SLOT_SIZE = 64
_PACKET_ID_SIZE = 8  # packet id and timestamp
_TLS_CRYPT_TAG_SIZE = 32
_TLS_CRYPT_KEY_SIZE = 32
_IV_SIZE = 16
_WKC_LENGTH_SIZE = 2
_MAX_WKC_SIZE = 1024
_STATIC_KEY_LABEL = "OpenVPN Static key V1"
_V2_CLIENT_KEY_LABEL = "OpenVPN tls-crypt-v2 client key"

#: Digests ``auth`` may name for tls-auth, by OpenVPN's spelling.
DIGESTS = {
    "MD5": "md5",
    "SHA1": "sha1",
    "SHA224": "sha224",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
}

KeyDirection = Literal[0, 1] | None
WrapKind = Literal["none", "tls-auth", "tls-crypt", "tls-crypt-v2"]


class KeyFileError(ValueError):
    """A key file not in the format its directive needs (the message never shows key bytes)."""


def _pem_body(text: str, label: str) -> str:
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start = text.find(begin)
    stop = text.find(end, start + 1)
    if start < 0 or stop < 0:
        raise KeyFileError(f"is not an '{label}' file")
    lines = text[start + len(begin) : stop].splitlines()
    return "".join(line.strip() for line in lines if not line.lstrip().startswith("#"))


def parse_static_key(text: str) -> bytes:
    """The 256 bytes of an ``OpenVPN Static key V1`` file (tls-auth and tls-crypt keys)."""
    try:
        key = bytes.fromhex(_pem_body(text, _STATIC_KEY_LABEL))
    except ValueError as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError("static key is not hexadecimal") from None
    if len(key) != STATIC_KEY_SIZE:
        raise KeyFileError(f"static key holds {len(key)} bytes, not {STATIC_KEY_SIZE}")
    return key


def parse_tls_crypt_v2_client_key(text: str) -> bytes:
    """The client key followed by its wrapped copy (WKc), from a tls-crypt-v2 client key file."""
    try:
        blob = base64.b64decode(_pem_body(text, _V2_CLIENT_KEY_LABEL), validate=True)
    except binascii.Error:
        raise KeyFileError("tls-crypt-v2 client key is not valid base64") from None
    check_tls_crypt_v2_client_key(blob)
    return blob


def check_tls_crypt_v2_client_key(blob: bytes) -> None:
    """Raise KeyFileError unless ``blob`` is a 256-byte key then a WKc ending in its own length."""
    wkc = blob[STATIC_KEY_SIZE:]
    if len(wkc) < _TLS_CRYPT_TAG_SIZE + _WKC_LENGTH_SIZE or len(wkc) > _MAX_WKC_SIZE:
        raise KeyFileError("tls-crypt-v2 client key has no valid wrapped key")
    if int.from_bytes(wkc[-_WKC_LENGTH_SIZE:], "big") != len(wkc):
        raise KeyFileError("tls-crypt-v2 client key's wrapped key has an inconsistent length")


@dataclass(frozen=True, slots=True)
class _Slots:
    """One direction's keys: which of the two slot sets to send with and which to receive with."""

    key: bytes
    send_set: int
    receive_set: int

    @classmethod
    def for_direction(cls, key: bytes, direction: KeyDirection) -> _Slots:
        if len(key) != STATIC_KEY_SIZE:
            raise ValueError(f"a static key is {STATIC_KEY_SIZE} bytes")
        if direction is None:
            return cls(key, 0, 0)
        return cls(key, direction, 1 - direction)

    def _slot(self, key_set: int, index: int) -> bytes:
        start = (2 * key_set + index) * _SLOT_SIZE
        return self.key[start : start + _SLOT_SIZE]

    def send_cipher(self) -> bytes:
        return self._slot(self.send_set, 0)

    def send_hmac(self) -> bytes:
        return self._slot(self.send_set, 1)

    def receive_cipher(self) -> bytes:
        return self._slot(self.receive_set, 0)

    def receive_hmac(self) -> bytes:
        return self._slot(self.receive_set, 1)


class Wrapper(Protocol):
    """Turns control packets into wire bytes and back."""

    @property
    def overhead(self) -> int:
        """Bytes the wrapper adds to a packet (for staying within tls-mtu)."""
        ...

    def wrap(self, packet: ControlPacket, net_time: int) -> bytes:
        """The wire form of ``packet``; ``net_time`` is the Unix time for replay protection."""
        ...

    def unwrap(self, data: bytes) -> ControlPacket:
        """Authenticate and decode ``data``; raise PacketError if it is not a valid packet."""
        ...


@dataclass
class _PacketIds:
    """The wrapper's own packet id sequence, which starts at 1 and is separate from message ids."""

    last: int = 0

    def next(self, net_time: int) -> bytes:
        self.last += 1
        return struct.pack("!II", self.last, net_time & 0xFFFFFFFF)


class NoWrap:
    """Plain control packets: only TLS protects them."""

    overhead = 0

    def wrap(self, packet: ControlPacket, net_time: int) -> bytes:
        return packet.encode()

    def unwrap(self, data: bytes) -> ControlPacket:
        return parse_body(*split_header(data))


@dataclass
class TlsAuth:
    """``tls-auth``: an HMAC with the ``auth`` digest over packet id, time, header and body.

    Wire form: ``header | hmac | packet id | time | body``; the HMAC input puts packet id and time
    first (``packet id | time | header | body``).
    """

    key: bytes
    direction: KeyDirection = None
    digest: str = "SHA1"
    _ids: _PacketIds = field(default_factory=_PacketIds, repr=False)

    def __post_init__(self) -> None:
        if self.digest not in DIGESTS:
            raise ValueError(f"tls-auth digest must be one of {', '.join(DIGESTS)}")
        self._slots = _Slots.for_direction(self.key, self.direction)
        self._hash = DIGESTS[self.digest]
        self._size = hashlib.new(self._hash).digest_size

    def __repr__(self) -> str:
        return f"TlsAuth(direction={self.direction!r}, digest={self.digest!r})"

    @property
    def overhead(self) -> int:
        return self._size + _PACKET_ID_SIZE

    def _mac(self, key: bytes, packet_id: bytes, header: bytes, body: bytes) -> bytes:
        return hmac.new(key[: self._size], packet_id + header + body, self._hash).digest()

    def wrap(self, packet: ControlPacket, net_time: int) -> bytes:
        packet_id = self._ids.next(net_time)
        header, body = packet.header, packet.body
        mac = self._mac(self._slots.send_hmac(), packet_id, header, body)
        return header + mac + packet_id + body

    def unwrap(self, data: bytes) -> ControlPacket:
        opcode, key_id, session_id, rest = split_header(data)
        if len(rest) < self.overhead:
            raise PacketError("packet is shorter than its tls-auth HMAC and packet id")
        mac, packet_id = rest[: self._size], rest[self._size : self.overhead]
        body = rest[self.overhead :]
        expected = self._mac(
            self._slots.receive_hmac(), packet_id, data[: len(data) - len(rest)], body
        )
        if not hmac.compare_digest(mac, expected):
            raise AuthenticationError("tls-auth HMAC does not match: wrong key or key-direction")
        return parse_body(opcode, key_id, session_id, body)


@dataclass
class TlsCrypt:
    """``tls-crypt``: AES-256-CTR over the body, authenticated by HMAC-SHA256 (SIV-like).

    Wire form: ``header | packet id | time | tag | ciphertext``. The tag is the HMAC of
    ``header | packet id | time | plaintext`` and its first 16 bytes are the CTR IV.
    ``wrapped_client_key`` is set for tls-crypt-v2: it follows the first packet so that the server
    can recover this client's key from it.
    """

    key: bytes
    wrapped_client_key: bytes | None = None
    _ids: _PacketIds = field(default_factory=_PacketIds, repr=False)

    def __post_init__(self) -> None:
        self._slots = _Slots.for_direction(self.key, 1)

    def __repr__(self) -> str:
        return f"TlsCrypt(v2={self.wrapped_client_key is not None})"

    @property
    def overhead(self) -> int:
        return _PACKET_ID_SIZE + _TLS_CRYPT_TAG_SIZE

    @staticmethod
    def _tag(hmac_slot: bytes, associated: bytes, plaintext: bytes) -> bytes:
        return hmac.new(hmac_slot[:_TLS_CRYPT_KEY_SIZE], associated + plaintext, "sha256").digest()

    @staticmethod
    def _ctr(cipher_slot: bytes, tag: bytes, data: bytes) -> bytes:
        context = Cipher(
            algorithms.AES(cipher_slot[:_TLS_CRYPT_KEY_SIZE]), modes.CTR(tag[:_IV_SIZE])
        ).encryptor()
        return context.update(data) + context.finalize()

    def wrap(self, packet: ControlPacket, net_time: int) -> bytes:
        associated = packet.header + self._ids.next(net_time)
        body = packet.body
        tag = self._tag(self._slots.send_hmac(), associated, body)
        wire = associated + tag + self._ctr(self._slots.send_cipher(), tag, body)
        carries_key = packet.opcode in (Opcode.CONTROL_HARD_RESET_CLIENT_V3, Opcode.CONTROL_WKC_V1)
        if carries_key and self.wrapped_client_key is not None:
            wire += self.wrapped_client_key
        return wire

    def unwrap(self, data: bytes) -> ControlPacket:
        opcode, key_id, session_id, rest = split_header(data)
        if len(rest) < self.overhead:
            raise PacketError("packet is shorter than its tls-crypt packet id and tag")
        associated = data[: HEADER_SIZE + _PACKET_ID_SIZE]
        tag = rest[_PACKET_ID_SIZE : self.overhead]
        body = self._ctr(self._slots.receive_cipher(), tag, rest[self.overhead :])
        if not hmac.compare_digest(tag, self._tag(self._slots.receive_hmac(), associated, body)):
            raise AuthenticationError("tls-crypt tag does not match: wrong key")
        return parse_body(opcode, key_id, session_id, body)


def make_wrapper(
    kind: WrapKind, key: bytes | None, *, direction: KeyDirection = None, digest: str = "SHA1"
) -> Wrapper:
    """The wrapper a config names; ``key`` is the static key, or for tls-crypt-v2 the client key."""
    if kind == "none":
        return NoWrap()
    if key is None:
        raise ValueError(f"{kind} needs a key")
    if kind == "tls-auth":
        return TlsAuth(key, direction, digest)
    if kind == "tls-crypt":
        return TlsCrypt(key)
    check_tls_crypt_v2_client_key(key)
    return TlsCrypt(key[:STATIC_KEY_SIZE], wrapped_client_key=key[STATIC_KEY_SIZE:])
