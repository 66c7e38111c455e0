"""AUTH payloads (RFC 7296 2.15, RFC 7427) and the responder's certificate, checked.

The responder proves its identity by signing (or MACing, with a shared key) the octets it sent:
its IKE_SA_INIT response, our nonce and the PRF of its ID payload. A signature counts only from a
certificate that chains to the configured CA and names the identity the user expects.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.transforms import Prf

# AUTH methods.
RSA_SIGNATURE = 1
SHARED_KEY = 2
ECDSA_SHA256 = 9
ECDSA_SHA384 = 10
ECDSA_SHA512 = 11
DIGITAL_SIGNATURE = 14

#: SIGNATURE_HASH_ALGORITHMS we announce (RFC 7427): SHA2-256, SHA2-384, SHA2-512, Identity.
SIGNATURE_HASHES = b"\x00\x02\x00\x03\x00\x04\x00\x05"
_KEY_PAD = b"Key Pad for IKEv2"

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 - AUTH method 1 and RSASSA-PSS's default
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
#: RFC 7427 AlgorithmIdentifier OIDs → (key type, hash name or None for Ed25519).
_SIGNATURE_OIDS = {
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    "1.3.101.112": ("ed25519", None),
    "1.2.840.113549.1.1.10": ("rsa-pss", None),
}
_PSS_HASH_OIDS = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


class AuthError(ValueError):
    """The responder's AUTH or certificate does not prove what it must; the message says why."""


class CertificateError(AuthError):
    """The responder's certificate does not chain to the CA or does not name the identity."""


def psk_auth(prf: Prf, secret: bytes, signed_octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)."""
    return prf(prf(secret, _KEY_PAD), signed_octets)


def signed_octets(prf: Prf, message: bytes, nonce: bytes, sk_p: bytes, id_payload: bytes) -> bytes:
    """RealMessage | Nonce of the other side | prf(SK_p, ID payload body)."""
    return message + nonce + prf(sk_p, id_payload)


def ca_key_hash(ca: x509.Certificate) -> bytes:
    """What a CERTREQ names a CA by: the SHA-1 of its SubjectPublicKeyInfo."""
    spki = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(spki).digest()  # noqa: S324 - RFC 7296 3.7 names CAs by SHA-1


def verify_chain(
    chain: Sequence[x509.Certificate], cas: Sequence[x509.Certificate], now: float
) -> x509.Certificate:
    """The end-entity certificate of ``chain`` once it chains to one of ``cas``, valid at ``now``.

    ``chain`` is what the responder sent, its own certificate first, then intermediates.
    """
    if not chain:
        raise CertificateError("the responder sent no certificate")
    current = chain[0]
    pool = list(chain[1:])
    for _ in range(len(chain) + 1):
        _check_validity(current, now)
        for ca in cas:
            if _issued_by(current, ca):
                _check_validity(ca, now)
                return chain[0]
        issuer = next((c for c in pool if _issued_by(current, c) and _is_ca(c)), None)
        if issuer is None:
            break
        pool.remove(issuer)
        current = issuer
    raise CertificateError(
        f"the certificate of {chain[0].subject.rfc4514_string()} is not signed by the configured CA"
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject or not _is_ca(issuer):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_validity(cert: x509.Certificate, now: float) -> None:
    if not cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp():
        raise CertificateError(
            f"the certificate of {cert.subject.rfc4514_string()} is not valid now"
        )


def names_identity(cert: x509.Certificate, identity: Identity) -> bool:
    """Whether the certificate carries ``identity``: as its subject DN or a subjectAltName."""
    if identity.id_type == p.ID_DER_ASN1_DN:
        return cert.subject.public_bytes() == identity.data
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if identity.id_type == p.ID_FQDN:
        wanted = identity.data.decode(errors="replace").lower()
        return wanted in (n.lower() for n in names.get_values_for_type(x509.DNSName))
    if identity.id_type == p.ID_RFC822_ADDR:
        wanted = identity.data.decode(errors="replace").lower()
        return wanted in (n.lower() for n in names.get_values_for_type(x509.RFC822Name))
    if identity.id_type in (p.ID_IPV4_ADDR, p.ID_IPV6_ADDR):
        return ipaddress.ip_address(identity.data) in names.get_values_for_type(x509.IPAddress)
    return False


def verify_signature(cert: x509.Certificate, method: int, data: bytes, octets: bytes) -> None:
    """Check an AUTH payload's signature by ``cert``'s key; raises AuthError."""
    key = cert.public_key()
    try:
        if method == RSA_SIGNATURE and isinstance(key, rsa.RSAPublicKey):
            key.verify(data, octets, padding.PKCS1v15(), _HASHES["sha1"])
        elif method in (ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512) and isinstance(
            key, ec.EllipticCurvePublicKey
        ):
            digest = _HASHES[{9: "sha256", 10: "sha384", 11: "sha512"}[method]]
            half = len(data) // 2
            der = utils.encode_dss_signature(
                int.from_bytes(data[:half], "big"), int.from_bytes(data[half:], "big")
            )
            key.verify(der, octets, ec.ECDSA(digest))
        elif method == DIGITAL_SIGNATURE:
            _verify_digital_signature(key, data, octets)
        else:
            raise AuthError(f"AUTH method {method} does not fit a {type(key).__name__}")
    except InvalidSignature:
        raise AuthError("the responder's AUTH signature does not verify") from None


def _verify_digital_signature(key: object, data: bytes, octets: bytes) -> None:
    """RFC 7427: a length byte, a DER AlgorithmIdentifier, then the signature."""
    if not data or len(data) < 1 + data[0]:
        raise AuthError("malformed RFC 7427 signature")
    algorithm, signature = data[1 : 1 + data[0]], data[1 + data[0] :]
    oid, parameters = _algorithm_identifier(algorithm)
    kind, hash_name = _SIGNATURE_OIDS.get(oid, (None, None))
    if kind == "rsa" and isinstance(key, rsa.RSAPublicKey) and hash_name:
        key.verify(signature, octets, padding.PKCS1v15(), _HASHES[hash_name])
    elif kind == "rsa-pss" and isinstance(key, rsa.RSAPublicKey):
        digest = _pss_hash(parameters)
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.AUTO)
        key.verify(signature, octets, pss, digest)
    elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey) and hash_name:
        key.verify(signature, octets, ec.ECDSA(_HASHES[hash_name]))
    elif kind == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, octets)
    else:
        raise AuthError(f"signature algorithm {oid} does not fit the certificate's key")


def _der(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, contents, offset after) of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise AuthError("malformed signature algorithm")
    tag, length, offset = data[offset], data[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise AuthError("malformed signature algorithm")
    return tag, data[offset : offset + length], offset + length


def _oid_text(raw: bytes) -> str:
    parts, value = [str(raw[0] // 40), str(raw[0] % 40)] if raw else [], 0
    for byte in raw[1:]:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def _algorithm_identifier(der: bytes) -> tuple[str, bytes]:
    tag, body, _ = _der(der, 0)
    if tag != 0x30:
        raise AuthError("malformed signature algorithm")
    tag, oid, after = _der(body, 0)
    if tag != 0x06:
        raise AuthError("malformed signature algorithm")
    return _oid_text(oid), body[after:]


def _pss_hash(parameters: bytes) -> hashes.HashAlgorithm:
    """The hash of RSASSA-PSS-params ([0] hashAlgorithm); SHA-1 when absent, as RFC 4055 says."""
    if parameters:
        _, sequence, _ = _der(parameters, 0)
        if sequence and sequence[0] == 0xA0:
            _, explicit, _ = _der(sequence, 0)
            oid, _ = _algorithm_identifier(explicit)
            if oid in _PSS_HASH_OIDS:
                return _HASHES[_PSS_HASH_OIDS[oid]]
    return _HASHES["sha1"]


class MalformedProof(AuthError):
    """The responder's proof is not well-formed (no IDr, a CERT that is not X.509)."""


@dataclass(frozen=True, slots=True)
class ResponderCheck:
    """What the responder must prove, and how."""

    expected: Identity | None
    #: ``pubkey``: a signature by a certificate from ``cas``; ``psk``: the shared key.
    method: str
    psk: bytes | None
    cas: tuple[x509.Certificate, ...]
    #: Unix time, for the certificates' validity.
    now: float


def check_responder(
    check: ResponderCheck,
    prf: Prf,
    *,
    idr: bytes | None,
    auth: bytes,
    certs: list[bytes],
    octets: bytes,
) -> str:
    """Verify the responder's IDr and AUTH; what it proved, for the probe's detail.

    Raises :class:`MalformedProof`, :class:`CertificateError` or :class:`AuthError`.
    ``octets`` are its signed octets: its IKE_SA_INIT response, our nonce, prf(SK_pr, IDr).
    """
    if idr is None:
        raise MalformedProof("the responder's IKE_AUTH has AUTH but no IDr")
    id_type, id_data = p.parse_id(idr)
    method, data = p.parse_auth(auth)
    expected = check.expected
    if expected is not None and (id_type, id_data) != (expected.id_type, expected.data):
        raise AuthError(f"the responder identified as another than {expected.text}")
    if check.method == "psk":
        if method != SHARED_KEY or check.psk is None:
            raise AuthError(f"the responder used AUTH method {method}, not a shared key")
        if not hmac.compare_digest(psk_auth(prf, check.psk, octets), data):
            raise AuthError("the responder's AUTH does not verify with the shared key")
        return "a shared key"
    if method == SHARED_KEY:
        raise AuthError("the responder used a shared key where a certificate was due")
    try:
        chain = [
            x509.load_der_x509_certificate(der)
            for encoding, der in map(p.parse_cert, certs)
            if encoding == p.CERT_X509_SIGNATURE
        ]
    except ValueError:
        raise MalformedProof("the responder's CERT payload is not an X.509 certificate") from None
    cert = verify_chain(chain, check.cas, check.now)
    identity = expected or Identity(id_type, id_data, "its IDr")
    if not names_identity(cert, identity):
        subject = cert.subject.rfc4514_string()
        raise CertificateError(f"the certificate of {subject} does not name {identity.text}")
    verify_signature(cert, method, data, octets)
    return f"certificate {cert.subject.rfc4514_string()}"


def sign(key: PrivateKeyTypes, octets: bytes) -> bytes:
    """Our RFC 7427 AUTH data: the AlgorithmIdentifier, then the signature (SHA-256 if hashed)."""
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = bytes.fromhex("300d06092a864886f70d01010b0500")  # sha256WithRSAEncryption
        signature = key.sign(octets, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
        signature = key.sign(octets, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = bytes.fromhex("300506032b6570")  # Ed25519
        signature = key.sign(octets)
    else:
        raise TypeError(f"cannot sign IKE AUTH with a {type(key).__name__}")
    return bytes([len(algorithm)]) + algorithm + signature
