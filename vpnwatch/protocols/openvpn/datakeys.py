"""The data channel's keys, derived as OpenVPN 2.6 derives them after key-method 2.

Both ways end in the same 256-byte block, OpenVPN's ``struct key2``: two keys of a 64-byte cipher
slot then a 64-byte HMAC slot. The client sends with key 0 and receives with key 1 (the server the
reverse); a cipher or HMAC uses the first bytes of its slot, and an AEAD cipher takes the 8 bytes
of its nonce that follow the packet id from the start of the (otherwise unused) HMAC slot.

- **TLS-EKM** (``key-derivation tls-ekm``, negotiated when both sides announce IV_PROTO's key-export
  bit): the block is the TLS session's keying-material exporter with the label
  :data:`EXPORTER_LABEL` and no context.
- **The OpenVPN PRF** otherwise: the TLS 1.0 PRF (P_MD5 XOR P_SHA1) first turns the client's 48-byte
  pre-master secret and both sides' ``random1`` into a 48-byte master secret, then expands that
  with both sides' ``random2`` and both session ids into the block. This is why the machine must
  keep the randomness it sent and received in the key-method 2 exchange.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

#: The label of the TLS keying-material exporter (RFC 5705) for data-channel keys.
EXPORTER_LABEL = b"EXPORTER-OpenVPN-datakeys"
SLOT_SIZE = 64
KEY_SIZE = 2 * SLOT_SIZE
#: Bytes of the key block: two keys, each a cipher slot and an HMAC slot.
KEY_BLOCK_SIZE = 2 * KEY_SIZE
PRE_MASTER_SIZE = 48
RANDOM_SIZE = 32
_MASTER_SIZE = 48
_MASTER_LABEL = b"OpenVPN master secret"
_EXPANSION_LABEL = b"OpenVPN key expansion"


def _p_hash(digest: str, secret: bytes, seed: bytes, size: int) -> bytes:
    """TLS's P_hash: HMAC chained over A(i) = HMAC(secret, A(i-1)), A(0) = seed."""
    out = bytearray()
    a = seed
    while len(out) < size:
        a = hmac.digest(secret, a, digest)
        out += hmac.digest(secret, a + seed, digest)
    return bytes(out[:size])


def tls1_prf(secret: bytes, seed: bytes, size: int) -> bytes:
    """The TLS 1.0/1.1 PRF (RFC 2246 §5); OpenVPN passes its label as the start of ``seed``."""
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], seed, size)
    sha1 = _p_hash("sha1", secret[len(secret) - half :], seed, size)
    return bytes(x ^ y for x, y in zip(md5, sha1, strict=True))


@dataclass(frozen=True, slots=True)
class KeySources:
    """The randomness both sides exchanged in key-method 2 (the server sends no pre-master)."""

    pre_master: bytes
    client_random1: bytes
    client_random2: bytes
    server_random1: bytes
    server_random2: bytes

    def __repr__(self) -> str:
        return "KeySources(<secret>)"

    @classmethod
    def split(cls, client_source: bytes, server_source: bytes) -> KeySources:
        """From the client's ``pre-master | random1 | random2`` and the server's two randoms."""
        if len(client_source) != PRE_MASTER_SIZE + 2 * RANDOM_SIZE:
            raise ValueError("the client key source is pre-master, random1 and random2")
        if len(server_source) != 2 * RANDOM_SIZE:
            raise ValueError("the server key source is random1 and random2")
        random1 = PRE_MASTER_SIZE + RANDOM_SIZE
        return cls(
            client_source[:PRE_MASTER_SIZE],
            client_source[PRE_MASTER_SIZE:random1],
            client_source[random1:],
            server_source[:RANDOM_SIZE],
            server_source[RANDOM_SIZE:],
        )


def prf_key_block(sources: KeySources, client_session: bytes, server_session: bytes) -> bytes:
    """The key block of key-method 2 without TLS-EKM (OpenVPN's ``openvpn_PRF`` twice)."""
    master = tls1_prf(
        sources.pre_master,
        _MASTER_LABEL + sources.client_random1 + sources.server_random1,
        _MASTER_SIZE,
    )
    return tls1_prf(
        master,
        _EXPANSION_LABEL
        + sources.client_random2
        + sources.server_random2
        + client_session
        + server_session,
        KEY_BLOCK_SIZE,
    )


@dataclass(frozen=True, slots=True)
class DirectionKey:
    """One direction's cipher and HMAC slots (each 64 bytes; a suite uses a prefix)."""

    cipher: bytes
    hmac: bytes

    def __repr__(self) -> str:
        return "DirectionKey(<secret>)"


@dataclass(frozen=True, slots=True)
class DataKeys:
    """The client's two directions of the data channel."""

    send: DirectionKey
    receive: DirectionKey

    @classmethod
    def for_client(cls, block: bytes) -> DataKeys:
        """Split a key block the way a client uses it: key 0 sends, key 1 receives."""
        if len(block) != KEY_BLOCK_SIZE:
            raise ValueError(f"a data key block is {KEY_BLOCK_SIZE} bytes")
        keys = [
            DirectionKey(block[at : at + SLOT_SIZE], block[at + SLOT_SIZE : at + KEY_SIZE])
            for at in (0, KEY_SIZE)
        ]
        return cls(send=keys[0], receive=keys[1])

    def __repr__(self) -> str:
        return "DataKeys(<secret>)"
