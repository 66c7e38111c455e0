"""Checks that PEM text in a target is what it claims to be, with ``cryptography`` loaded lazily.

``cryptography.x509`` costs a check of one WireGuard file a sixth of its start-up; only targets
that carry certificates or keys need it, so it is imported by the first check that does. The
annotated types at the end are what target models declare their PEM fields with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, SecretStr


def check_certificates(pem: str) -> None:
    """One or more PEM certificates; raises ValueError."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, x509.InvalidVersion):
        raise ValueError("is not a PEM certificate") from None


def check_certificate(pem: str) -> None:
    """Exactly one PEM certificate; raises ValueError."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, x509.InvalidVersion):
        raise ValueError("is not a PEM certificate") from None


def check_crl(pem: str) -> None:
    """One or more PEM certificate revocation lists; raises ValueError."""
    from cryptography import x509

    blocks = pem.count("-----BEGIN X509 CRL-----")
    if not blocks:
        raise ValueError("is not a PEM CRL")
    for block in pem.split("-----END X509 CRL-----")[:blocks]:
        try:
            x509.load_pem_x509_crl((block + "-----END X509 CRL-----\n").encode())
        except ValueError:
            raise ValueError("is not a PEM CRL") from None


def check_private_key(pem: str) -> None:
    """An unencrypted PEM private key of a kind TLS can use; raises ValueError."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise ValueError("is encrypted: vpnwatch needs an unencrypted key") from None
    except ValueError:
        raise ValueError("is not a PEM private key") from None
    except UnsupportedAlgorithm:
        raise ValueError("is a private key of a kind vpnwatch cannot use") from None


def check_key_matches(cert_pem: str, key_pem: str) -> None:
    """The private key is the certificate's (both already checked); raises ValueError.

    TLS would refuse the pair only when a probe loads it; a mismatch is the file's fault, told
    once at load.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    certificate_key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    private_key = load_pem_private_key(key_pem.encode(), password=None)
    der = serialization.Encoding.DER
    if certificate_key.public_bytes(der, spki) != private_key.public_key().public_bytes(der, spki):
        raise ValueError("key is not the private key of cert")


def _checked(check: Callable[[str], None]) -> AfterValidator:
    def validate(pem: str) -> str:
        check(pem)
        return pem

    return AfterValidator(validate)


def _checked_key(key: SecretStr) -> SecretStr:
    check_private_key(key.get_secret_value())
    return key


#: PEM fields of target models, checked when a target is loaded.
Certificates = Annotated[str, _checked(check_certificates)]
Certificate = Annotated[str, _checked(check_certificate)]
Crls = Annotated[str, _checked(check_crl)]
PrivateKey = Annotated[SecretStr, AfterValidator(_checked_key)]
