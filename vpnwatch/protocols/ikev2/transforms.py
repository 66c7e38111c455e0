"""The algorithms an IKE or ESP SA negotiates, and the keys RFC 7296 derives for them.

Only what road-warrior servers offer today (strongSwan's, Windows', Apple's defaults): AES-GCM
with a 16-byte tag, or AES-CBC with HMAC-SHA2; PRF-HMAC-SHA2; Diffie-Hellman groups 14 (MODP
2048), 19 and 20 (NIST P-256, P-384) and 31 (Curve25519). Every private value comes from the
caller's ``random`` so that a captured handshake can be replayed byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Random = Callable[[int], bytes]

# Transform types (RFC 7296 3.3.2).
ENCR = 1
PRF = 2
INTEG = 3
DH = 4
ESN = 5

ENCR_AES_CBC = 12
ENCR_AES_GCM_16 = 20
PRF_HMAC_SHA2 = {5: hashlib.sha256, 6: hashlib.sha384, 7: hashlib.sha512}
#: Integrity transform → (hash, truncated ICV length).
INTEG_HMAC_SHA2 = {12: (hashlib.sha256, 16), 13: (hashlib.sha384, 24), 14: (hashlib.sha512, 32)}
#: The key-length attribute's type (TV format: the high bit set).
KEY_LENGTH_ATTRIBUTE = 0x800E

GCM_SALT = 4
GCM_IV = 8
GCM_TAG = 16
AES_BLOCK = 16


class InvalidPublicValue(ValueError):
    """A peer's KE data is not a valid public value of the group."""


class DecryptError(ValueError):
    """A message did not decrypt or authenticate with the keys we derived."""


# RFC 3526 group 14: the 2048-bit MODP prime, generator 2.
_MODP2048 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E34"
    "04DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6"
    "F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A6916"
    "3FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C"
    "32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA95"
    "6AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
#: Bytes of private exponent drawn for MODP 2048: 256 bits, as strongSwan uses for this group.
_MODP_EXPONENT_BYTES = 32


class KeyExchange:
    """One side's ephemeral Diffie-Hellman key for one group."""

    group: int
    public: bytes

    def shared_secret(self, peer: bytes) -> bytes:
        raise NotImplementedError


class _Modp(KeyExchange):
    def __init__(self, group: int, prime: int, random: Random) -> None:
        self.group, self._prime = group, prime
        self._size = (prime.bit_length() + 7) // 8
        self._private = int.from_bytes(random(_MODP_EXPONENT_BYTES), "big") | 1 << 255
        self.public = pow(2, self._private, prime).to_bytes(self._size, "big")

    def shared_secret(self, peer: bytes) -> bytes:
        value = int.from_bytes(peer, "big")
        if len(peer) != self._size or not 1 < value < self._prime - 1:
            raise InvalidPublicValue(f"group {self.group} value out of range")
        return pow(value, self._private, self._prime).to_bytes(self._size, "big")


class _Ecp(KeyExchange):
    def __init__(self, group: int, curve: ec.EllipticCurve, random: Random) -> None:
        self.group, self._curve = group, curve
        self._size = (curve.key_size + 7) // 8
        order = _ORDERS[group]
        scalar = int.from_bytes(random(self._size + 8), "big") % (order - 1) + 1
        self._private = ec.derive_private_key(scalar, curve)
        numbers = self._private.public_key().public_numbers()
        self.public = numbers.x.to_bytes(self._size, "big") + numbers.y.to_bytes(self._size, "big")

    def shared_secret(self, peer: bytes) -> bytes:
        if len(peer) != 2 * self._size:
            raise InvalidPublicValue(f"group {self.group} point of {len(peer)} bytes")
        try:
            point = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, b"\x04" + peer)
            return self._private.exchange(ec.ECDH(), point)
        except ValueError:
            raise InvalidPublicValue(f"group {self.group} point not on the curve") from None


class _Curve25519(KeyExchange):
    def __init__(self, random: Random) -> None:
        self.group = 31
        self._private = X25519PrivateKey.from_private_bytes(random(32))
        self.public = self._private.public_key().public_bytes_raw()

    def shared_secret(self, peer: bytes) -> bytes:
        if len(peer) != 32:
            raise InvalidPublicValue(f"group 31 value of {len(peer)} bytes")
        try:
            return self._private.exchange(X25519PublicKey.from_public_bytes(peer))
        except ValueError:
            raise InvalidPublicValue("group 31 value of low order") from None


_ORDERS = {
    19: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    20: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def key_exchange(group: int, random: Random) -> KeyExchange:
    """A fresh ephemeral key of ``group`` drawn from ``random``."""
    if group == 14:
        return _Modp(14, _MODP2048, random)
    if group == 19:
        return _Ecp(19, ec.SECP256R1(), random)
    if group == 20:
        return _Ecp(20, ec.SECP384R1(), random)
    if group == 31:
        return _Curve25519(random)
    raise ValueError(f"Diffie-Hellman group {group} is not supported")


@dataclass(frozen=True, slots=True)
class Prf:
    """PRF-HMAC-SHA2 and RFC 7296's prf+ over it."""

    transform: int

    def __call__(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, PRF_HMAC_SHA2[self.transform]).digest()

    @property
    def size(self) -> int:
        return PRF_HMAC_SHA2[self.transform]().digest_size

    def plus(self, key: bytes, seed: bytes, length: int) -> bytes:
        """prf+ (RFC 7296 2.13): T1 | T2 | … with Tn = prf(K, Tn-1 | S | n)."""
        out, block, counter = b"", b"", 1
        while len(out) < length:
            block = self(key, block + seed + bytes([counter]))
            out += block
            counter += 1
        return out[:length]


@dataclass(frozen=True, slots=True)
class Suite:
    """An encryption transform, with its integrity transform unless it is an AEAD."""

    encr: int
    key_bits: int
    integ: int | None = None

    @property
    def aead(self) -> bool:
        return self.encr == ENCR_AES_GCM_16

    @property
    def encr_key_size(self) -> int:
        return self.key_bits // 8 + (GCM_SALT if self.aead else 0)

    @property
    def integ_key_size(self) -> int:
        if self.integ is None:
            return 0
        return INTEG_HMAC_SHA2[self.integ][0]().digest_size

    @property
    def icv_size(self) -> int:
        if self.integ is None:
            return GCM_TAG
        return INTEG_HMAC_SHA2[self.integ][1]

    @property
    def iv_size(self) -> int:
        return GCM_IV if self.aead else AES_BLOCK

    @property
    def block(self) -> int:
        """What the plaintext and its padding must be a multiple of."""
        return 4 if self.aead else AES_BLOCK


@dataclass(frozen=True, slots=True)
class DirectionKeys:
    """The keys of one direction of an SA."""

    cipher: Suite
    encr: bytes
    integ: bytes

    def seal(self, header: bytes, plaintext: bytes, iv: bytes) -> bytes:
        """IV | ciphertext | ICV, authenticated together with ``header``.

        ``plaintext`` already carries its padding (:func:`pad`).
        """
        if self.cipher.aead:
            nonce = self.encr[-GCM_SALT:] + iv
            sealed = AESGCM(self.encr[:-GCM_SALT]).encrypt(nonce, plaintext, header)
            return iv + sealed
        encryptor = Cipher(algorithms.AES(self.encr), modes.CBC(iv)).encryptor()
        body = iv + encryptor.update(plaintext) + encryptor.finalize()
        return body + self._icv(header + body)

    def open(self, header: bytes, sealed: bytes) -> bytes:
        """The padded plaintext of IV | ciphertext | ICV; raises DecryptError."""
        cipher = self.cipher
        if len(sealed) < cipher.iv_size + cipher.icv_size:
            raise DecryptError("shorter than its IV and ICV")
        iv, rest = sealed[: cipher.iv_size], sealed[cipher.iv_size :]
        if cipher.aead:
            try:
                return AESGCM(self.encr[:-GCM_SALT]).decrypt(
                    self.encr[-GCM_SALT:] + iv, rest, header
                )
            except InvalidTag:
                raise DecryptError("the AES-GCM tag does not verify") from None
        body, icv = sealed[: -cipher.icv_size], sealed[-cipher.icv_size :]
        if not hmac.compare_digest(self._icv(header + body), icv):
            raise DecryptError("the HMAC does not verify")
        ciphertext = rest[: -cipher.icv_size]
        if len(ciphertext) % AES_BLOCK:
            raise DecryptError("the ciphertext is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self.encr), modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()

    def _icv(self, data: bytes) -> bytes:
        assert self.cipher.integ is not None
        digest, size = INTEG_HMAC_SHA2[self.cipher.integ]
        return hmac.new(self.integ, data, digest).digest()[:size]


@dataclass(frozen=True, slots=True)
class IkeKeys:
    """The IKE SA's keys (RFC 7296 2.14)."""

    prf: Prf
    d: bytes
    initiator: DirectionKeys
    responder: DirectionKeys
    pi: bytes
    pr: bytes


def derive_ike_keys(
    prf: Prf,
    cipher: Suite,
    shared_secret: bytes,
    *,
    nonces: tuple[bytes, bytes],
    spis: tuple[bytes, bytes],
) -> IkeKeys:
    """SKEYSEED = prf(Ni | Nr, g^ir), then prf+ gives SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi and
    SK_pr in that order (RFC 7296 2.14)."""
    nonce_i, nonce_r = nonces
    spi_i, spi_r = spis
    seed = prf(nonce_i + nonce_r, shared_secret)
    integ, encr = cipher.integ_key_size, cipher.encr_key_size
    sizes = (prf.size, integ, integ, encr, encr, prf.size, prf.size)
    stream = prf.plus(seed, nonce_i + nonce_r + spi_i + spi_r, sum(sizes))
    parts, offset = [], 0
    for size in sizes:
        parts.append(stream[offset : offset + size])
        offset += size
    d, ai, ar, ei, er, pi, pr = parts
    return IkeKeys(prf, d, DirectionKeys(cipher, ei, ai), DirectionKeys(cipher, er, ar), pi, pr)


def derive_child_keys(
    keys: IkeKeys, cipher: Suite, nonce_i: bytes, nonce_r: bytes
) -> tuple[DirectionKeys, DirectionKeys]:
    """KEYMAT = prf+(SK_d, Ni | Nr): the initiator's outbound keys, then the responder's."""
    encr, integ = cipher.encr_key_size, cipher.integ_key_size
    stream = keys.prf.plus(keys.d, nonce_i + nonce_r, 2 * (encr + integ))
    outbound = DirectionKeys(cipher, stream[:encr], stream[encr : encr + integ])
    rest = stream[encr + integ :]
    return outbound, DirectionKeys(cipher, rest[:encr], rest[encr : encr + integ])


def pad(plaintext: bytes, block: int, tail: bytes = b"") -> bytes:
    """Plaintext | 1, 2, 3… | pad length | ``tail``, a multiple of ``block``.

    IKE's SK payload has no tail; ESP's trailer ends with the next-header byte.
    """
    count = -(len(plaintext) + 1 + len(tail)) % block
    return plaintext + bytes(range(1, count + 1)) + bytes([count]) + tail
