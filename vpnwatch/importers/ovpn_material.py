"""Keys and certificates as ``.ovpn`` files carry them, turned into what the probe's TLS loads.

OpenVPN reads a certificate file's extra certificates as its chain, unpacks ``pkcs12`` bundles
and decrypts keys with the ``askpass`` passphrase; the probe's TLS context takes one unencrypted
PEM key and a PEM chain, so the importer converts once, at load. Messages never repeat a key,
a passphrase or a file's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

_BEGIN_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_END_CERTIFICATE = "-----END CERTIFICATE-----"
_ENCRYPTED_MARKS = ("-----BEGIN ENCRYPTED PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED")


class MaterialError(ValueError):
    """A bundle or key that cannot be opened; the message is fit for the user."""


@dataclass(frozen=True)
class Bundle:
    """A pkcs12 bundle's content as PEM: the client certificate, its key, and other certificates."""

    cert: str
    key: str
    chain: str


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _unencrypted(key: Any) -> str:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


def split_certificates(pem: str) -> tuple[str, str]:
    """The first certificate of ``pem`` and the ones after it (its chain), each as PEM text."""
    blocks = pem.split(_BEGIN_CERTIFICATE)[1:]
    if len(blocks) <= 1:
        return pem, ""
    certificates = [_BEGIN_CERTIFICATE + block.split(_END_CERTIFICATE)[0] + _END_CERTIFICATE + "\n"
                    for block in blocks]  # fmt: skip
    return certificates[0], "".join(certificates[1:])


def is_encrypted_key(pem: str) -> bool:
    return any(mark in pem for mark in _ENCRYPTED_MARKS)


def decrypt_key(pem: str, passphrase: str) -> str:
    """The key of ``pem`` without its encryption, as PEM (PKCS#8)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase.encode())
    except (ValueError, TypeError):
        raise MaterialError("does not decrypt with the askpass passphrase") from None
    return _unencrypted(key)


def read_pkcs12(data: bytes, passphrase: str | None) -> Bundle:
    """Certificate, key and CA certificates of a pkcs12 bundle (``passphrase`` from askpass)."""
    tries = [passphrase.encode()] if passphrase is not None else [None, b""]
    for password in tries:
        try:
            key, cert, others = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            continue
        break
    else:
        hint = "wrong askpass passphrase" if passphrase is not None else "needs 'askpass FILE'"
        raise MaterialError(f"cannot be opened ({hint}), or is not a pkcs12 bundle")
    if key is None or cert is None:
        raise MaterialError("holds no certificate with its private key")
    return Bundle(_pem(cert), _unencrypted(key), "".join(_pem(other) for other in others))
