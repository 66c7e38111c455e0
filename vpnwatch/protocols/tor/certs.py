"""Checking a Tor relay's CERTS cell: does it prove the identity a bridge line names?

A relay's identity is its 1024-bit RSA key: the fingerprint in a bridge line is the SHA-1 of that
key (DER, PKCS #1). The CERTS cell chains the TLS connection to it (tor-spec §4.2, "validating a
responder's CERTS cell"):

* type 2, the RSA identity certificate (X.509), self-signed;
* type 1, the TLS link certificate (X.509), signed by the identity key, whose key is the one
  the TLS handshake used;
* and, on every relay since 0.2.7, the Ed25519 chain (cert-spec): type 7 cross-certifies the
  Ed25519 identity with the RSA key, type 4 has that identity sign a signing key, and type 5 has
  the signing key certify the SHA-256 of the TLS certificate.

When any Ed25519 certificate is present, all three must be and must verify, and the link
certificate (type 1) then becomes optional, as the specification says; without them, the RSA
pair alone proves the identity. Every certificate must be valid at ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

LINK = 1
RSA_IDENTITY = 2
ED_SIGNING = 4
ED_LINK = 5
RSA_ED_CROSSCERT = 7
ED_TYPES = (ED_SIGNING, ED_LINK, RSA_ED_CROSSCERT)

IDENTITY_BITS = 1024
ED_KEY_LENGTH = 32
ED_SIGNATURE_LENGTH = 64
#: cert-spec's key types; tor before 0.4.5.1 wrote 01 everywhere, which readers must accept.
KEY_ED25519 = 1
KEY_SHA256_OF_X509 = 3
EXT_SIGNED_WITH_ED25519_KEY = 4
EXT_AFFECTS_VALIDATION = 1
CROSSCERT_PREFIX = b"Tor TLS RSA/Ed25519 cross-certificate"


class CertsError(Exception):
    """The CERTS cell does not prove an identity: a certificate is missing, malformed, expired
    or badly signed, or it does not bind the TLS connection."""


class IdentityMismatch(CertsError):
    """The CERTS cell proves an identity, but not the one the bridge line names."""


@dataclass(frozen=True, slots=True)
class RelayIdentity:
    """What a verified CERTS cell proved."""

    fingerprint: str  # 40 hexadecimal digits, upper case
    ed25519: bytes | None  # the Ed25519 identity key, when the relay has one

    def describe(self) -> str:
        if self.ed25519 is None:
            return f"relay {self.fingerprint}"
        ed = base64.b64encode(self.ed25519).decode().rstrip("=")
        return f"relay {self.fingerprint} (Ed25519 {ed})"


def rsa_fingerprint(key: rsa.RSAPublicKey) -> str:
    """A relay fingerprint: SHA-1 of the key's PKCS #1 DER encoding, in upper-case hex."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 (what fingerprints are)


def verify_responder_certs(
    certificates: dict[int, bytes], tls_certificate: bytes, fingerprint: str, now: float
) -> RelayIdentity:
    """The identity the CERTS cell proves, once it is the one ``fingerprint`` names.

    ``tls_certificate`` is the DER certificate the relay presented in the TLS handshake;
    ``now`` the wall-clock time every certificate must be valid at. Raises CertsError.
    """
    identity_cert = _x509(certificates, RSA_IDENTITY, "RSA identity")
    identity_key = _rsa_identity_key(identity_cert)
    _check_x509(identity_cert, identity_key, now)
    proved = rsa_fingerprint(identity_key)
    if not hmac.compare_digest(proved, fingerprint.upper()):
        raise IdentityMismatch(
            f"the relay proves identity {proved}, not the bridge line's {fingerprint.upper()}"
        )
    has_ed = any(kind in certificates for kind in ED_TYPES)
    if LINK in certificates or not has_ed:
        link_cert = _x509(certificates, LINK, "TLS link")
        _check_x509(link_cert, identity_key, now)
        if link_cert.spki != _X509.parse(tls_certificate, "TLS session's").spki:
            raise CertsError("the TLS link certificate's key is not the one TLS used")
    ed_identity = _verify_ed25519_chain(certificates, identity_key, tls_certificate, now)
    return RelayIdentity(proved, ed_identity if has_ed else None)


@dataclass(frozen=True, slots=True)
class _X509:
    """What the checks read of an X.509 certificate, read once: ``cryptography`` parses some
    fields only when asked, so a damaged certificate must fail here, as a CertsError."""

    name: str
    key: PublicKeyTypes
    not_before: datetime
    not_after: datetime
    signature: bytes
    signed: bytes
    hash_algorithm: hashes.HashAlgorithm | None

    @classmethod
    def parse(cls, der: bytes, name: str) -> _X509:
        try:
            cert = x509.load_der_x509_certificate(der)
            return cls(
                name,
                cert.public_key(),
                cert.not_valid_before_utc,
                cert.not_valid_after_utc,
                cert.signature,
                cert.tbs_certificate_bytes,
                cert.signature_hash_algorithm,
            )
        except (ValueError, UnsupportedAlgorithm):
            raise CertsError(f"the {name} certificate is not well-formed DER X.509") from None

    @property
    def spki(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _x509(certificates: dict[int, bytes], kind: int, name: str) -> _X509:
    if kind not in certificates:
        raise CertsError(f"the CERTS cell has no {name} certificate (type {kind})")
    return _X509.parse(certificates[kind], name)


def _rsa_identity_key(cert: _X509) -> rsa.RSAPublicKey:
    if not isinstance(cert.key, rsa.RSAPublicKey) or cert.key.key_size != IDENTITY_BITS:
        raise CertsError("the identity certificate's key is not a 1024-bit RSA key")
    return cert.key


def _check_x509(cert: _X509, signer: rsa.RSAPublicKey, now: float) -> None:
    moment = datetime.fromtimestamp(now, UTC)
    if not cert.not_before <= moment <= cert.not_after:
        raise CertsError(
            f"the {cert.name} certificate is valid {cert.not_before:%Y-%m-%d %H:%M} to "
            f"{cert.not_after:%Y-%m-%d %H:%M} UTC, not now"
        )
    if cert.hash_algorithm is None:
        raise CertsError(f"the {cert.name} certificate names no signature hash")
    try:
        signer.verify(cert.signature, cert.signed, padding.PKCS1v15(), cert.hash_algorithm)
    except InvalidSignature:
        raise CertsError(f"the {cert.name} certificate is not signed by the identity key") from None


@dataclass(frozen=True, slots=True)
class _EdCert:
    """An Ed25519 certificate (cert-spec §2.1), parsed but not yet checked."""

    kind: int
    expires_hour: int
    key_type: int
    certified_key: bytes
    signed_with: bytes | None
    signed: bytes
    signature: bytes


def _parse_ed(data: bytes, expected_kind: int) -> _EdCert:
    name = f"Ed25519 certificate type {expected_kind}"
    header = struct.Struct(">BBIB32sB")
    if len(data) < header.size + ED_SIGNATURE_LENGTH:
        raise CertsError(f"the {name} is too short")
    version, kind, expires, key_type, certified, count = header.unpack_from(data)
    if version != 1 or kind != expected_kind:
        raise CertsError(f"the {name} has version {version} and type {kind}")
    offset, signed_with = header.size, None
    for _ in range(count):
        if offset + 4 > len(data) - ED_SIGNATURE_LENGTH:
            raise CertsError(f"the {name} has a truncated extension")
        length, ext_type, flags = struct.unpack_from(">HBB", data, offset)
        value = data[offset + 4 : offset + 4 + length]
        offset += 4 + length
        if offset > len(data) - ED_SIGNATURE_LENGTH:
            raise CertsError(f"the {name} has a truncated extension")
        if ext_type == EXT_SIGNED_WITH_ED25519_KEY and length == ED_KEY_LENGTH:
            signed_with = value
        elif flags & EXT_AFFECTS_VALIDATION:
            raise CertsError(f"the {name} has an extension ({ext_type}) that must be understood")
    if offset != len(data) - ED_SIGNATURE_LENGTH:
        raise CertsError(f"the {name} has bytes between its extensions and signature")
    return _EdCert(kind, expires, key_type, certified, signed_with, data[:offset], data[offset:])


def _check_ed(cert: _EdCert, signer: bytes, now: float) -> None:
    name = f"Ed25519 certificate type {cert.kind}"
    if cert.signed_with is not None and cert.signed_with != signer:
        raise CertsError(f"the {name} names a signing key other than the one that certifies it")
    if cert.expires_hour * 3600 < now:
        raise CertsError(f"the {name} expired")
    try:
        Ed25519PublicKey.from_public_bytes(signer).verify(cert.signature, cert.signed)
    except InvalidSignature:
        raise CertsError(f"the {name} is not signed by the key that should sign it") from None


def _verify_ed25519_chain(
    certificates: dict[int, bytes], identity_key: rsa.RSAPublicKey, tls: bytes, now: float
) -> bytes | None:
    """The Ed25519 identity the chain proves, or None when the relay sent no Ed25519 chain."""
    present = [kind for kind in ED_TYPES if kind in certificates]
    if not present:
        return None
    if len(present) != len(ED_TYPES):
        missing = sorted(set(ED_TYPES) - set(present))
        raise CertsError(f"the CERTS cell has part of an Ed25519 chain: types {missing} missing")
    signing_cert = _parse_ed(certificates[ED_SIGNING], ED_SIGNING)
    if signing_cert.signed_with is None:
        raise CertsError("the Ed25519 signing-key certificate does not name the identity key")
    identity = signing_cert.signed_with
    _check_ed(signing_cert, identity, now)
    if signing_cert.key_type != KEY_ED25519:
        raise CertsError("the Ed25519 signing-key certificate certifies no Ed25519 key")
    link_cert = _parse_ed(certificates[ED_LINK], ED_LINK)
    _check_ed(link_cert, signing_cert.certified_key, now)
    if link_cert.key_type not in (KEY_ED25519, KEY_SHA256_OF_X509):
        raise CertsError("the Ed25519 link certificate certifies no certificate digest")
    if not hmac.compare_digest(link_cert.certified_key, hashlib.sha256(tls).digest()):
        raise CertsError("the Ed25519 link certificate is for another TLS certificate")
    _check_crosscert(certificates[RSA_ED_CROSSCERT], identity, identity_key, now)
    return identity


def _check_crosscert(
    data: bytes, ed_identity: bytes, rsa_key: rsa.RSAPublicKey, now: float
) -> None:
    """Type 7: the RSA identity vouches for the Ed25519 identity (cert-spec §2.3)."""
    body = ED_KEY_LENGTH + 4
    if len(data) < body + 1 or len(data) != body + 1 + data[body]:
        raise CertsError("the RSA->Ed25519 cross-certificate is malformed")
    certified, (expires,) = data[:ED_KEY_LENGTH], struct.unpack_from(">I", data, ED_KEY_LENGTH)
    if certified != ed_identity:
        raise CertsError("the RSA->Ed25519 cross-certificate vouches for another Ed25519 key")
    if expires * 3600 < now:
        raise CertsError("the RSA->Ed25519 cross-certificate expired")
    # Tor signs a bare SHA-256 digest with PKCS #1 v1.5 padding and no DigestInfo around it.
    digest = hashlib.sha256(CROSSCERT_PREFIX + data[:body]).digest()
    try:
        recovered = rsa_key.recover_data_from_signature(data[body + 1 :], padding.PKCS1v15(), None)
    except InvalidSignature:
        recovered = b""
    if not hmac.compare_digest(recovered, digest):
        raise CertsError("the RSA->Ed25519 cross-certificate is not signed by the RSA identity")
