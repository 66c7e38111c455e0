"""The cryptographic floor of each probe: the public-key work a handshake cannot do without.

Each floor is timed in this process with the libraries the probes use, so the ratio of a probe's
CPU to its floor says how much the rest (asyncio, sockets, framing, Python) costs on top.

* WireGuard: the X25519 operations :mod:`vpnwatch.protocols.wireguard` performs per handshake:
  two scalar multiplications of the base point (the static key's public half, computed when the
  initiator is made, and the ephemeral key's) and four Diffie-Hellman operations (static-static
  and ephemeral-static for the initiation, ephemeral-ephemeral and static-ephemeral for the
  response).
* obfs4: one ephemeral key and the two exchanges of ntor (with the server's ephemeral key and with
  the bridge's identity key). Finding a key that Elligator can represent and the maps are not
  counted: they are what obfs4 adds (natively, by Monocypher), shown apart.
* obfs4 with the Tor link check: the obfs4 floor, plus the public-key work of the link: TLS 1.3's
  key share (an X25519 key and exchange) and the check of the relay's RSA-2048 CertificateVerify
  signature (PSS), then the CERTS cell's three RSA-1024 signatures (identity self-signature, link
  certificate, RSA->Ed25519 cross-certificate) and two Ed25519 signatures.
* OpenVPN: the client's half of the TLS handshake with the lab's certificates (ECDSA P-256, TLS 1.3
  as the lab's OpenVPN 2.6 negotiates it), over memory BIOs against an in-process server whose own
  work is not counted: key exchange, the server's chain and CertificateVerify checked, the
  client's signed.
* Shadowsocks: the AEAD and key-derivation work of one request: the two HKDF-SHA1 subkeys (ours
  and the server's, from each direction's salt), sealing the request and opening the answer. The
  password's master key (EVP_BytesToKey) is derived once per target, as the probe caches it.
"""

from __future__ import annotations

import contextlib
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from benchmarks.measure import measured
from vpnwatch.lab.openvpn import Pki
from vpnwatch.protocols.obfs4.elligator import generate_keypair, representative_to_public_key
from vpnwatch.protocols.openvpn.tls import build_context
from vpnwatch.protocols.shadowsocks.aead import CIPHERS, Opener, Sealer, password_key

WIREGUARD_X25519_OPERATIONS = 6
OBFS4_X25519_OPERATIONS = 3


def _seconds_each(operation: Callable[[], object], rounds: int) -> float:
    operation()  # warm: first calls load code and tables
    with measured() as usage:
        for _ in range(rounds):
            operation()
    return usage.cpu / rounds


def _public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def _exchange(private: X25519PrivateKey, public: bytes) -> bytes:
    return private.exchange(X25519PublicKey.from_public_bytes(public))


def wireguard_floor(rounds: int) -> float:
    """CPU seconds of one WireGuard handshake's six X25519 operations."""
    server_static = _public(X25519PrivateKey.generate())
    server_ephemeral = _public(X25519PrivateKey.generate())
    static_bytes = X25519PrivateKey.generate().private_bytes_raw()

    def handshake() -> None:
        static = X25519PrivateKey.from_private_bytes(static_bytes)
        _public(static)
        _exchange(static, server_static)
        ephemeral = X25519PrivateKey.generate()
        _public(ephemeral)
        _exchange(ephemeral, server_static)
        _exchange(ephemeral, server_ephemeral)
        _exchange(static, server_ephemeral)

    return _seconds_each(handshake, rounds)


def obfs4_floor(rounds: int) -> float:
    """CPU seconds of one obfs4 handshake's three X25519 operations."""
    identity = _public(X25519PrivateKey.generate())
    server_ephemeral = _public(X25519PrivateKey.generate())

    def handshake() -> None:
        ephemeral = X25519PrivateKey.generate()
        _public(ephemeral)
        _exchange(ephemeral, server_ephemeral)
        _exchange(ephemeral, identity)

    return _seconds_each(handshake, rounds)


def tor_link_floor(rounds: int) -> float:
    """CPU seconds of the Tor link check's public-key work, on top of the obfs4 handshake's."""
    message = b"tor link" * 16
    tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    tls_signature = tls_key.sign(message, pss, hashes.SHA256())
    identity = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (tor's)
    rsa_signature = identity.sign(message, padding.PKCS1v15(), hashes.SHA256())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_signature = ed_key.sign(message)
    server_share = _public(X25519PrivateKey.generate())

    def link() -> None:
        share = X25519PrivateKey.generate()
        _public(share)
        _exchange(share, server_share)
        tls_key.public_key().verify(tls_signature, message, pss, hashes.SHA256())
        for _ in range(3):
            identity.public_key().verify(
                rsa_signature, message, padding.PKCS1v15(), hashes.SHA256()
            )
        for _ in range(2):
            ed_key.public_key().verify(ed_signature, message)

    return _seconds_each(link, rounds)


def elligator_cost(rounds: int) -> float:
    """CPU seconds obfs4's Elligator 2 adds to a handshake: a representable key, one map back.

    Not part of the floor, but most of what the probe spends above it, so it is shown apart.
    """

    def handshake() -> None:
        representative_to_public_key(generate_keypair().representative)

    return _seconds_each(handshake, rounds)


def openvpn_floor(pki: Pki, rounds: int) -> float:
    """CPU seconds of the client's side of one TLS handshake with the lab's certificates."""
    client_context = build_context(pki.ca, pki.client_cert, pki.client_key)
    server_context = _server_context(pki)
    _client_handshake(client_context, server_context)
    total = 0.0
    for _ in range(rounds):
        total += _client_handshake(client_context, server_context)
    return total / rounds


def _server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=pki.ca)
    with tempfile.TemporaryDirectory() as directory:
        cert, key = Path(directory, "server.crt"), Path(directory, "server.key")
        cert.write_text(pki.server_cert)
        key.write_text(pki.server_key)
        context.load_cert_chain(cert, key)
    return context


def _client_handshake(client_context: ssl.SSLContext, server_context: ssl.SSLContext) -> float:
    """One handshake through memory; returns the CPU seconds spent in the client's calls only."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server, server_side=False)
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client_cpu = 0.0
    client_done = server_done = False
    for _ in range(10):  # TLS 1.3 with client certificates needs three flights
        with measured() as usage, contextlib.suppress(ssl.SSLWantReadError):
            client.do_handshake()
            client_done = True
        client_cpu += usage.cpu
        server_in.write(to_server.read())
        with contextlib.suppress(ssl.SSLWantReadError):
            server.do_handshake()
            server_done = True
        to_client.write(server_out.read())
        if client_done and server_done:
            return client_cpu
    raise RuntimeError("the in-memory TLS handshake did not complete")


def shadowsocks_floor(method: str, rounds: int, request: bytes, answer: bytes) -> float:
    """CPU seconds of one Shadowsocks request's AEAD and HKDF work with ``method``."""
    cipher = CIPHERS[method]
    key = password_key(b"benchmark", cipher.key_length)
    salt = bytes(cipher.key_length)
    sealed_answer = Sealer(cipher, key, salt).seal(answer)

    def one_request() -> None:
        Sealer(cipher, key, salt).seal(request)
        Opener(cipher, key).open(sealed_answer)

    return _seconds_each(one_request, rounds)
