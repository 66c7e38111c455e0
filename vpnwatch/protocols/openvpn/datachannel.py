"""OpenVPN 2.6's data channel: one inner packet in a P_DATA_V2 (or V1) packet, and back.

On the wire (2.6's format, before 2.7's epoch keys)::

    P_DATA_V2: opcode 9 << 3 | key id | peer id:u24 | body        (P_DATA_V1: opcode 6, no peer id)
    AEAD body: packet id:u32 | tag:16 | ciphertext                 (GCM, ChaCha20-Poly1305)
    CBC body:  HMAC(iv | ciphertext) | iv:16 | CBC(packet id:u32 | payload), PKCS#7 padded

An AEAD nonce is the packet id followed by 8 bytes of the direction's HMAC slot, and the
authenticated data is the P_DATA_V2 header and the packet id (the packet id alone with P_DATA_V1,
whose opcode is added after encryption). CBC suites draw a fresh IV per packet from an injectable
source and authenticate with ``auth``'s digest keyed by the HMAC slot.

Packets that fail to parse, authenticate or pass the replay window raise a :class:`PacketError`
(an :class:`AuthenticationError` for a bad tag or HMAC), which the caller counts and drops, as
OpenVPN does.
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from vpnwatch.protocols.openvpn.datakeys import DataKeys, DirectionKey
from vpnwatch.protocols.openvpn.packets import AuthenticationError, Opcode, PacketError
from vpnwatch.protocols.openvpn.push import PushReply
from vpnwatch.protocols.openvpn.replay import PACKET_ID_SIZE, PacketIdCounter, ReplayWindow
from vpnwatch.protocols.openvpn.wrappers import DIGESTS

AEAD_TAG_SIZE = 16
_AEAD_IMPLICIT_IV_SIZE = 8
_CBC_IV_SIZE = 16
_CBC_BLOCK_BITS = 128
_OPCODE_SHIFT = 3
_KEY_ID_MASK = 0x07
_MAX_PEER_ID = 0xFFFFFF
V1_HEADER_SIZE = 1
V2_HEADER_SIZE = 4
_PACKET_ID = struct.Struct("!I")


class Suite(Protocol):
    """One direction-independent cipher suite: seals and opens a body with a direction's key."""

    @property
    def name(self) -> str:
        """OpenVPN's name of the cipher."""
        ...

    def seal(self, key: DirectionKey, aad: bytes, packet_id: int, payload: bytes) -> bytes:
        """The body after the header; ``aad`` is the header that AEAD suites authenticate."""
        ...

    def open(self, key: DirectionKey, aad: bytes, body: bytes) -> tuple[int, bytes]:
        """The packet id and the payload; raises PacketError or AuthenticationError."""
        ...


@dataclass(frozen=True, slots=True)
class AeadSuite:
    """AES-GCM or ChaCha20-Poly1305 with OpenVPN's implicit IV."""

    name: str
    key_size: int
    chacha: bool = False

    def _aead(self, key: DirectionKey) -> AESGCM | ChaCha20Poly1305:
        secret = key.cipher[: self.key_size]
        return ChaCha20Poly1305(secret) if self.chacha else AESGCM(secret)

    @staticmethod
    def _nonce(key: DirectionKey, packet_id: bytes) -> bytes:
        return packet_id + key.hmac[:_AEAD_IMPLICIT_IV_SIZE]

    def seal(self, key: DirectionKey, aad: bytes, packet_id: int, payload: bytes) -> bytes:
        pid = _PACKET_ID.pack(packet_id)
        sealed = self._aead(key).encrypt(self._nonce(key, pid), payload, aad + pid)
        ciphertext, tag = sealed[:-AEAD_TAG_SIZE], sealed[-AEAD_TAG_SIZE:]
        return pid + tag + ciphertext

    def open(self, key: DirectionKey, aad: bytes, body: bytes) -> tuple[int, bytes]:
        if len(body) < PACKET_ID_SIZE + AEAD_TAG_SIZE:
            raise PacketError(f"{self.name} data packet of {len(body)} bytes is truncated")
        pid = body[:PACKET_ID_SIZE]
        tag = body[PACKET_ID_SIZE : PACKET_ID_SIZE + AEAD_TAG_SIZE]
        ciphertext = body[PACKET_ID_SIZE + AEAD_TAG_SIZE :]
        try:
            payload = self._aead(key).decrypt(self._nonce(key, pid), ciphertext + tag, aad + pid)
        except InvalidTag:
            raise AuthenticationError(f"{self.name} data packet fails authentication") from None
        return _PACKET_ID.unpack(pid)[0], payload


@dataclass(frozen=True, slots=True)
class CbcSuite:
    """AES-CBC with an HMAC over IV and ciphertext: legacy servers' ``data-ciphers-fallback``."""

    name: str
    key_size: int
    digest: str  # OpenVPN's spelling, a key of DIGESTS
    random_bytes: Callable[[int], bytes] = os.urandom

    @property
    def _hash(self) -> str:
        return DIGESTS[self.digest]

    def _mac(self, key: DirectionKey, data: bytes) -> bytes:
        size = hmac.new(b"", digestmod=self._hash).digest_size
        return hmac.digest(key.hmac[:size], data, self._hash)

    def _cipher(self, key: DirectionKey, iv: bytes) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(key.cipher[: self.key_size]), modes.CBC(iv))

    def seal(self, key: DirectionKey, aad: bytes, packet_id: int, payload: bytes) -> bytes:
        iv = self.random_bytes(_CBC_IV_SIZE)
        padder = padding.PKCS7(_CBC_BLOCK_BITS).padder()
        plain = padder.update(_PACKET_ID.pack(packet_id) + payload) + padder.finalize()
        encryptor = self._cipher(key, iv).encryptor()
        ciphertext = iv + encryptor.update(plain) + encryptor.finalize()
        return self._mac(key, ciphertext) + ciphertext

    def open(self, key: DirectionKey, aad: bytes, body: bytes) -> tuple[int, bytes]:
        mac_size = hmac.new(b"", digestmod=self._hash).digest_size
        if len(body) < mac_size + 2 * _CBC_IV_SIZE or (len(body) - mac_size) % _CBC_IV_SIZE:
            raise PacketError(f"{self.name} data packet of {len(body)} bytes is malformed")
        mac, ciphertext = body[:mac_size], body[mac_size:]
        if not hmac.compare_digest(mac, self._mac(key, ciphertext)):
            raise AuthenticationError(f"{self.name} data packet fails its HMAC")
        decryptor = self._cipher(key, ciphertext[:_CBC_IV_SIZE]).decryptor()
        plain = decryptor.update(ciphertext[_CBC_IV_SIZE:]) + decryptor.finalize()
        unpadder = padding.PKCS7(_CBC_BLOCK_BITS).unpadder()
        try:
            plain = unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise PacketError(f"{self.name} data packet has bad padding") from None
        if len(plain) < PACKET_ID_SIZE:
            raise PacketError(f"{self.name} data packet holds no packet id")
        return _PACKET_ID.unpack_from(plain)[0], plain[PACKET_ID_SIZE:]


_AEAD_SUITES = {
    "AES-128-GCM": AeadSuite("AES-128-GCM", 16),
    "AES-192-GCM": AeadSuite("AES-192-GCM", 24),
    "AES-256-GCM": AeadSuite("AES-256-GCM", 32),
    "CHACHA20-POLY1305": AeadSuite("CHACHA20-POLY1305", 32, chacha=True),
}
_CBC_KEY_SIZES = {"AES-128-CBC": 16, "AES-192-CBC": 24, "AES-256-CBC": 32}
#: Every data-channel cipher the probe speaks, by OpenVPN's (upper-case) name.
CIPHERS = frozenset(_AEAD_SUITES) | frozenset(_CBC_KEY_SIZES)


class UnsupportedCipher(ValueError):
    """A cipher (or digest) the server chose that vpnwatch does not implement."""


def make_suite(
    cipher: str, digest: str = "SHA1", *, random_bytes: Callable[[int], bytes] = os.urandom
) -> Suite:
    """The suite for OpenVPN's ``cipher`` name; ``auth``'s ``digest`` matters to CBC only."""
    name = cipher.upper()
    if name in _AEAD_SUITES:
        return _AEAD_SUITES[name]
    if name in _CBC_KEY_SIZES:
        normal = digest.upper().replace("-", "")
        if normal not in DIGESTS:
            raise UnsupportedCipher(f"data-channel digest {digest!r} is not supported")
        return CbcSuite(name, _CBC_KEY_SIZES[name], normal, random_bytes)
    raise UnsupportedCipher(f"data-channel cipher {cipher!r} is not supported")


_NO_COMPRESS = 0xFA  # comp-lzo: an uncompressed packet follows
_NO_COMPRESS_SWAP = 0xFB  # compress (stub, lz4): the packet's first byte moved to its end
_V2_INDICATOR = 0x50  # compress stub-v2/lz4-v2: escapes a packet that starts with this byte


@dataclass(frozen=True, slots=True)
class Framing:
    """The compression framing a pushed ``comp-lzo``/``compress`` puts around every payload.

    The probe never compresses (as 2.6 with ``allow-compression no`` or ``asym``), but the framing
    byte must be there, and the server's uncompressed packets carry it too. A compressed packet
    from the server cannot be an answer to an incompressible echo and is rejected.
    """

    kind: str = "none"  # none | lzo | swap | v2

    def wrap(self, payload: bytes) -> bytes:
        if self.kind == "lzo":
            return bytes([_NO_COMPRESS]) + payload
        if self.kind == "swap" and payload:
            return bytes([_NO_COMPRESS_SWAP]) + payload[1:] + payload[:1]
        if self.kind == "v2" and payload[:1] == bytes([_V2_INDICATOR]):
            return bytes([_V2_INDICATOR, 0]) + payload
        return payload

    def unwrap(self, payload: bytes) -> bytes:
        if self.kind == "none" or not payload:
            return payload
        if self.kind == "v2":
            if payload[0] != _V2_INDICATOR:
                return payload
            if payload[1:2] == b"\x00":
                return payload[2:]
        elif self.kind == "lzo" and payload[0] == _NO_COMPRESS:
            return payload[1:]
        elif self.kind == "swap" and payload[0] == _NO_COMPRESS_SWAP:
            return payload[-1:] + payload[1:-1]
        raise PacketError("the server sent a compressed packet")


def framing_for(compression: str | None) -> Framing:
    """The framing for the last pushed compression (``comp-lzo no``, ``compress lz4-v2``…)."""
    if compression is None:
        return Framing()
    words = compression.split()
    if words[0] == "comp-lzo":
        return Framing("lzo")
    if len(words) > 1 and words[1].endswith("-v2"):
        return Framing("v2")
    return Framing("swap")


class DataChannel:
    """The client's data channel for one key: seals inner packets, opens the server's.

    ``peer_id`` is the pushed ``peer-id`` (P_DATA_V2), or None for P_DATA_V1. The server may
    answer with either opcode; both are opened. ``framing`` is the pushed compression's.
    """

    def __init__(
        self,
        suite: Suite,
        keys: DataKeys,
        *,
        peer_id: int | None,
        key_id: int = 0,
        framing: Framing = Framing(),
    ) -> None:
        if peer_id is not None and not 0 <= peer_id <= _MAX_PEER_ID:
            raise ValueError("a peer id is 24 bits")
        if not 0 <= key_id <= _KEY_ID_MASK:
            raise ValueError("key id is 0 to 7")
        self.suite = suite
        self._keys = keys
        self._key_id = key_id
        self._header = (
            bytes([Opcode.DATA_V1 << _OPCODE_SHIFT | key_id])
            if peer_id is None
            else struct.pack("!I", (Opcode.DATA_V2 << _OPCODE_SHIFT | key_id) << 24 | peer_id)
        )
        self._framing = framing
        self._counter = PacketIdCounter()
        self._window = ReplayWindow()

    def __repr__(self) -> str:
        return f"DataChannel({self.suite.name})"

    def seal(self, payload: bytes) -> bytes:
        """One data packet carrying ``payload`` (an inner IP packet), ready for the link."""
        v2 = len(self._header) == V2_HEADER_SIZE
        aad = self._header if v2 else b""
        body = self.suite.seal(
            self._keys.send, aad, self._counter.next(), self._framing.wrap(payload)
        )
        return self._header + body

    def open(self, packet: bytes) -> bytes:
        """The payload of the server's data packet; raises PacketError (see the module)."""
        if not packet:
            raise PacketError("empty data packet")
        opcode, key_id = packet[0] >> _OPCODE_SHIFT, packet[0] & _KEY_ID_MASK
        if opcode == Opcode.DATA_V2:
            header_size = V2_HEADER_SIZE
        elif opcode == Opcode.DATA_V1:
            header_size = V1_HEADER_SIZE
        else:
            raise PacketError(f"opcode {opcode} is not a data packet")
        if key_id != self._key_id:
            raise PacketError(f"data packet for key id {key_id}, not {self._key_id}")
        header, body = packet[:header_size], packet[header_size:]
        if len(body) >= PACKET_ID_SIZE and isinstance(self.suite, AeadSuite):
            self._window.check(_PACKET_ID.unpack_from(body)[0])  # before spending a decryption
        aad = header if opcode == Opcode.DATA_V2 else b""
        packet_id, payload = self.suite.open(self._keys.receive, aad, body)
        self._window.accept(packet_id)
        return self._framing.unwrap(payload)


def is_data_packet(packet: bytes) -> bool:
    """Whether ``packet`` (after any TCP framing) is a data-channel packet, not a control one."""
    return bool(packet) and packet[0] >> _OPCODE_SHIFT in (Opcode.DATA_V1, Opcode.DATA_V2)


def uses_tls_ekm(reply: PushReply) -> bool:
    """Whether the server keyed the data channel with TLS-EKM (it pushes so, in either of the
    ways 2.6 knows) rather than with key-method 2's PRF."""
    return reply.key_derivation == "tls-ekm" or "tls-ekm" in reply.protocol_flags


def negotiated_channel(
    reply: PushReply,
    cipher: str,
    digest: str,
    key_block: bytes,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> DataChannel:
    """The client's channel for what the handshake settled: the ``cipher``, ``auth``'s
    ``digest``, the :mod:`.datakeys` block, and the pushed peer-id and compression framing;
    raises UnsupportedCipher."""
    return DataChannel(
        make_suite(cipher, digest, random_bytes=random_bytes),
        DataKeys.for_client(key_block),
        peer_id=reply.peer_id,
        framing=framing_for(reply.compression),
    )
