"""Shadowsocks AEAD (SIP004): the password's key, the per-session subkey, and the chunked stream.

Each direction of a connection starts with a random salt as long as the key; the subkey is
HKDF-SHA1(key, salt, info ``ss-subkey``), and the rest of the stream is chunks of at most 0x3FFF
bytes, each an encrypted 2-byte length and an encrypted payload, each with its own tag, under a
12-byte little-endian counter nonce that both ends advance once per seal or open. A reply whose
first chunk opens under our key is the server's proof that it holds the password.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TAG_LENGTH = 16
NONCE_LENGTH = 12
LENGTH_FIELD = 2
#: SIP004: a chunk's payload is at most 0x3FFF bytes (the two top bits are reserved).
MAX_PAYLOAD = 0x3FFF
SUBKEY_INFO = b"ss-subkey"

Aead = AESGCM | ChaCha20Poly1305


@dataclass(frozen=True, slots=True)
class Cipher:
    """One AEAD method as the links name it: its key (and salt) length and its construction."""

    name: str
    key_length: int
    build: Callable[[bytes], Aead]


#: The methods servers run today (the stream ciphers were deprecated and are not probed).
CIPHERS: dict[str, Cipher] = {
    cipher.name: cipher
    for cipher in (
        Cipher("chacha20-ietf-poly1305", 32, ChaCha20Poly1305),
        Cipher("aes-256-gcm", 32, AESGCM),
        Cipher("aes-128-gcm", 16, AESGCM),
    )
}


class DecryptionFailed(Exception):
    """A chunk did not authenticate under our key: not the server we share the password with."""


def password_key(password: bytes, length: int) -> bytes:
    """The master key from a password: OpenSSL's EVP_BytesToKey with MD5 and one round.

    Every Shadowsocks implementation derives it this way, so a link's password gives the same
    key in every client.
    """
    key, block = b"", b""
    while len(key) < length:
        block = hashlib.md5(block + password).digest()  # noqa: S324 - the protocol fixes it
        key += block
    return key[:length]


def subkey(cipher: Cipher, key: bytes, salt: bytes) -> bytes:
    """The session key of one direction: HKDF-SHA1 over the master key and that direction's salt."""
    sha1 = hashes.SHA1()  # noqa: S303 - SIP004 fixes it
    return HKDF(sha1, cipher.key_length, salt, SUBKEY_INFO).derive(key)


class _Nonces:
    """The little-endian counter nonce, advanced once per AEAD operation."""

    def __init__(self) -> None:
        self._counter = 0

    def next(self) -> bytes:
        nonce = self._counter.to_bytes(NONCE_LENGTH, "little")
        self._counter += 1
        return nonce


class Sealer:
    """Our direction: the salt first, then every write as chunks."""

    def __init__(self, cipher: Cipher, key: bytes, salt: bytes) -> None:
        if len(salt) != cipher.key_length:
            raise ValueError(f"{cipher.name} needs a {cipher.key_length}-byte salt")
        self._aead = cipher.build(subkey(cipher, key, salt))
        self._nonces = _Nonces()
        self._salt: bytes | None = salt

    def seal(self, plaintext: bytes) -> bytes:
        """``plaintext`` as chunks, preceded by the salt the first time."""
        out = [self._salt] if self._salt is not None else []
        self._salt = None
        for start in range(0, len(plaintext), MAX_PAYLOAD):
            payload = plaintext[start : start + MAX_PAYLOAD]
            length = len(payload).to_bytes(LENGTH_FIELD, "big")
            out.append(self._aead.encrypt(self._nonces.next(), length, None))
            out.append(self._aead.encrypt(self._nonces.next(), payload, None))
        return b"".join(out)


class Opener:
    """The server's direction: its salt, then chunks, opened as they arrive whole."""

    def __init__(self, cipher: Cipher, key: bytes) -> None:
        self._cipher = cipher
        self._key = key
        self._aead: Aead | None = None
        self._nonces = _Nonces()
        self._buffer = bytearray()
        self._payload_length: int | None = None
        #: Chunks opened so far: one means the server proved it holds the key.
        self.chunks = 0

    def open(self, data: bytes) -> bytes:
        """The plaintext of every chunk completed by ``data``; DecryptionFailed if one is forged."""
        self._buffer += data
        if self._aead is None:
            if len(self._buffer) < self._cipher.key_length:
                return b""
            salt = bytes(self._buffer[: self._cipher.key_length])
            del self._buffer[: self._cipher.key_length]
            self._aead = self._cipher.build(subkey(self._cipher, self._key, salt))
        plaintext = []
        while True:
            if self._payload_length is None:
                if len(self._buffer) < LENGTH_FIELD + TAG_LENGTH:
                    break
                length = self._open(LENGTH_FIELD + TAG_LENGTH)
                self._payload_length = int.from_bytes(length, "big") & MAX_PAYLOAD
            if len(self._buffer) < self._payload_length + TAG_LENGTH:
                break
            plaintext.append(self._open(self._payload_length + TAG_LENGTH))
            self._payload_length = None
            self.chunks += 1
        return b"".join(plaintext)

    def _open(self, size: int) -> bytes:
        assert self._aead is not None
        sealed = bytes(self._buffer[:size])
        del self._buffer[:size]
        try:
            return self._aead.decrypt(self._nonces.next(), sealed, None)
        except InvalidTag:
            raise DecryptionFailed("a chunk from the server failed authentication") from None
