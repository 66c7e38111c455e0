"""The AEAD construction's parts against values fixed outside vpnwatch."""

from __future__ import annotations

from typing import get_args

import pytest

from vpnwatch.protocols.shadowsocks.aead import (
    CIPHERS,
    MAX_PAYLOAD,
    DecryptionFailed,
    Opener,
    Sealer,
    password_key,
)
from vpnwatch.targets.shadowsocks import Method

# ``openssl enc -aes-256-cbc -k 'barfoo!' -P -nosalt -md md5``: EVP_BytesToKey, as every
# Shadowsocks client derives the master key.
OPENSSL_KEY_256 = bytes.fromhex("B3ADC47839E047EB228870526DC8FC30B347287FFCA3045DCEA06B3FDF090ACB")


def test_password_key_is_evp_bytes_to_key() -> None:
    assert password_key(b"barfoo!", 32) == OPENSSL_KEY_256
    assert password_key(b"barfoo!", 16) == OPENSSL_KEY_256[:16]


class _Server:
    """The server's direction made with the same construction, to test framing."""

    def __init__(self, method: str, key: bytes) -> None:
        cipher = CIPHERS[method]
        self.sealer = Sealer(cipher, key, bytes(range(cipher.key_length)))


@pytest.mark.parametrize("method", sorted(CIPHERS))
def test_a_stream_opens_whatever_its_chunking(method: str) -> None:
    key = password_key(b"secret", CIPHERS[method].key_length)
    plaintext = bytes(range(256)) * 200  # spans several chunks of 0x3FFF
    sealed = _Server(method, key).sealer.seal(plaintext)
    opener = Opener(CIPHERS[method], key)
    opened = b"".join(opener.open(sealed[i : i + 1000]) for i in range(0, len(sealed), 1000))
    assert opened == plaintext
    assert opener.chunks == -(-len(plaintext) // MAX_PAYLOAD)


def test_a_wrong_key_or_a_flipped_bit_fails_authentication() -> None:
    cipher = CIPHERS["aes-128-gcm"]
    key = password_key(b"secret", 16)
    sealed = Sealer(cipher, key, bytes(16)).seal(b"hello")
    with pytest.raises(DecryptionFailed):
        Opener(cipher, password_key(b"other", 16)).open(sealed)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        Opener(cipher, key).open(bytes(flipped))


def test_the_salt_must_match_the_cipher() -> None:
    with pytest.raises(ValueError, match="32-byte salt"):
        Sealer(CIPHERS["aes-256-gcm"], bytes(32), bytes(16))


def test_the_target_model_offers_exactly_the_ciphers_spoken() -> None:
    assert set(get_args(Method)) == set(CIPHERS)
