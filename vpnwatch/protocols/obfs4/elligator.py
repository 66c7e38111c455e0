"""Elligator 2 for X25519, with the "dirty" keys current obfs4 clients send, by Monocypher.

obfs4 hides its ephemeral keys by sending the Elligator 2 *representative* of each key instead of
the key: 32 bytes that look uniformly random. Three details make a representative look like the
ones real clients send, so that a censor that blocks obfs4 blocks the probe exactly as it blocks
a user:

* the public key is "dirty": the clean X25519 key plus a random point of the curve's order-8
  subgroup. Clean keys all lie in the prime-order subgroup, which a censor can test by decoding
  the representative and multiplying by the group order; X25519 clamps every scalar to a
  multiple of 8, so the peer's shared secret is unchanged;
* each key has two preimages under the map; one is chosen at random;
* the map's output has 254 bits, and the top two bits are filled at random.

Monocypher's ``crypto_elligator_key_pair`` does all three, natively: the field arithmetic in pure
Python cost 0.8 ms a probe, six times the handshake's X25519 work. Its map agrees with RFC 9380's
vectors and its keys with obfs4proxy (both tested).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import monocypher

KEY_LENGTH = 32
REPRESENTATIVE_LENGTH = 32
#: Monocypher derives the key, the low-order point, the preimage and the padding from this.
SEED_LENGTH = 32


@dataclass(frozen=True, slots=True)
class ElligatorKeypair:
    """An ephemeral X25519 key whose public half has a representative."""

    private_key: bytes = field(repr=False)
    public_key: bytes
    representative: bytes


def generate_keypair(random_bytes: Callable[[int], bytes] = os.urandom) -> ElligatorKeypair:
    """A fresh dirty keypair and a representative of its public key, as obfs4 clients make them."""
    representative, private_key = monocypher.elligator_key_pair(random_bytes(SEED_LENGTH))
    return ElligatorKeypair(
        private_key=private_key,
        public_key=representative_to_public_key(representative),
        representative=representative,
    )


def representative_to_public_key(representative: bytes) -> bytes:
    """The (dirty) public key a representative stands for; its top two bits are ignored."""
    public_key: bytes = monocypher.elligator_map(representative)
    return public_key
