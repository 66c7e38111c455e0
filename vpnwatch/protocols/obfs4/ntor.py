"""obfs4's variant of Tor's ntor handshake: KEY_SEED, the server's AUTH tag and the session keys.

obfs4 orders the transcript differently from Tor's ntor (proposal 216): where Tor writes
``ID | B | X | Y | PROTOID``, obfs4's reference implementation writes ``B | B | X | Y | PROTOID |
ID``: the identity key twice and the node id last. The reference code is what servers run, so it
is followed here, not the prose.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PROTOCOL_ID = b"ntor-curve25519-sha256-1"
T_MAC = PROTOCOL_ID + b":mac"
T_KEY = PROTOCOL_ID + b":key_extract"
T_VERIFY = PROTOCOL_ID + b":key_verify"
M_EXPAND = PROTOCOL_ID + b":key_expand"

NODE_ID_LENGTH = 20
AUTH_LENGTH = 32
#: Two directions of: secretbox key (32), nonce prefix (16), SipHash key (16) and IV (8).
SESSION_KEY_MATERIAL_LENGTH = 144


class DegenerateKeyError(ValueError):
    """A Diffie-Hellman result was all zeros: the peer sent a low-order point."""


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def derive(
    shared_ephemeral: bytes,
    shared_static: bytes,
    *,
    identity_key: bytes,
    client_key: bytes,
    server_key: bytes,
    node_id: bytes,
) -> tuple[bytes, bytes]:
    """KEY_SEED and AUTH from the two Diffie-Hellman results, the same on both sides.

    ``shared_ephemeral`` is EXP(Y, x) = EXP(X, y); ``shared_static`` is EXP(B, x) = EXP(X, b).
    """
    transcript = identity_key + identity_key + client_key + server_key + PROTOCOL_ID + node_id
    secret_input = shared_ephemeral + shared_static + transcript
    key_seed = _hmac_sha256(T_KEY, secret_input)
    verify = _hmac_sha256(T_VERIFY, secret_input)
    auth = _hmac_sha256(T_MAC, verify + transcript + b"Server")
    return key_seed, auth


def exchange(private_key: bytes | X25519PrivateKey, public_key: bytes) -> bytes:
    """X25519, refusing an all-zero result instead of using it.

    A key given as bytes is loaded here; loading computes its public half, a scalar
    multiplication as costly as the exchange, so a key used twice is loaded once by the caller.
    """
    if isinstance(private_key, bytes):
        private_key = X25519PrivateKey.from_private_bytes(private_key)
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:  # cryptography refuses to return the all-zero secret
        raise DegenerateKeyError("the peer's key is a low-order point") from None


def client_derive(
    private_key: bytes,
    client_key: bytes,
    server_key: bytes,
    *,
    identity_key: bytes,
    node_id: bytes,
) -> tuple[bytes, bytes]:
    """The client's side: KEY_SEED and the AUTH tag the server must have sent."""
    private = X25519PrivateKey.from_private_bytes(private_key)
    return derive(
        exchange(private, server_key),
        exchange(private, identity_key),
        identity_key=identity_key,
        client_key=client_key,
        server_key=server_key,
        node_id=node_id,
    )


def session_key_material(key_seed: bytes) -> bytes:
    """HKDF-SHA256 of KEY_SEED: 144 bytes, the client-to-server half first (as the code has it)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=SESSION_KEY_MATERIAL_LENGTH, salt=T_KEY, info=M_EXPAND
    ).derive(key_seed)
