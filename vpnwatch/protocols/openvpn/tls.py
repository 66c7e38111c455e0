"""OpenVPN's TLS: the client context and the peer checks the OpenVPN client applies.

The TLS records travel as the payloads of reliable P_CONTROL_V1 messages through the shared
memory-BIO :class:`~vpnwatch.protocols.tls.TlsChannel`. Certificate checks follow the OpenVPN
client: the chain must lead to the config's ``<ca>`` (host names are not checked, OpenVPN does
not), then ``peer-fingerprint``, ``remote-cert-tls server`` and ``verify-x509-name`` are applied to
the leaf certificate. With ``peer-fingerprint`` and no ``<ca>`` (a self-signed server) the chain is
not checked, only the fingerprint, as OpenVPN does; TLS still proves the server holds its key.

The client's TLS directives shape the context as they shape OpenVPN's: ``tls-version-min/max``,
``tls-cipher``, ``tls-ciphersuites``, ``tls-groups`` and ``tls-cert-profile`` (OpenSSL's security
level, ``legacy`` by default in 2.6). Python's ``ssl`` has no call for TLS 1.3 cipher suites nor
for a list of groups, so those two go to OpenSSL directly (:mod:`.openssl`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vpnwatch.protocols.openvpn import openssl
from vpnwatch.protocols.openvpn.names import X509NameType
from vpnwatch.protocols.tls import CertificateError, pem_file

#: OpenVPN prints these attributes by their OpenSSL short names, which RFC 4514 spells otherwise.
_OPENSSL_NAMES = {NameOID.EMAIL_ADDRESS: "emailAddress"}


@dataclass(frozen=True, slots=True)
class PeerRequirements:
    """What the server's certificate must satisfy beyond chaining to the CA."""

    x509_name: str | None = None
    x509_name_type: X509NameType = "subject"
    remote_cert_tls_server: bool = False
    #: ``peer-fingerprint``: SHA-256 digests, one of which the leaf certificate must have.
    fingerprints: frozenset[bytes] = field(default_factory=frozenset)


#: ``tls-version-min/max`` values and the versions they name.
TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
#: ``tls-cert-profile`` → OpenSSL security level (OpenVPN's ``tls_ctx_set_cert_profile``).
CERT_PROFILES = {"insecure": 0, "legacy": 1, "preferred": 2, "suiteb": 3}
#: OpenVPN's ``tls-cipher`` when the file sets none (``ssl_openssl.c``).
DEFAULT_TLS_CIPHER = "DEFAULT:!EXP:!LOW:!MEDIUM:!kDH:!kECDH:!DSS:!PSK:!SRP:!kRSA"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The client file's TLS directives; the defaults are OpenVPN 2.6's."""

    version_min: str = "1.2"
    #: ``tls-version-min X or-highest``: fall back to the highest version this OpenSSL has.
    or_highest: bool = False
    version_max: str | None = None
    cipher: str | None = None
    ciphersuites: str | None = None
    groups: str | None = None
    cert_profile: str = "legacy"
    #: ``crl-verify``: PEM CRLs the server's certificate is checked against.
    crl: str | None = None


def build_context(
    ca_pem: str | None,
    cert_pem: str | None = None,
    key_pem: str | None = None,
    settings: TlsSettings = TlsSettings(),
) -> ssl.SSLContext:
    """A TLS context for an OpenVPN client: trusts only ``ca_pem``, optionally presents a cert.

    ``cert_pem`` may hold the client's chain after its certificate (``<extra-certs>``): it is sent
    whole, so a server that trusts only the root accepts a certificate from an intermediate CA.
    Without ``ca_pem`` no chain is verified: the caller checks ``peer-fingerprint`` instead.
    Raises ``ssl.SSLError`` for what OpenSSL refuses (an unknown cipher or group, for instance).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # OpenVPN checks names itself (verify-x509-name), see below
    if ca_pem is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=ca_pem)
        if settings.crl is not None:
            with pem_file(settings.crl) as crl_path:
                context.load_verify_locations(cafile=crl_path)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    _set_versions(context, settings)
    level = CERT_PROFILES.get(settings.cert_profile, 1)
    default = "SUITEB128" if settings.cert_profile == "suiteb" else DEFAULT_TLS_CIPHER
    context.set_ciphers(f"{settings.cipher or default}:@SECLEVEL={level}")
    if settings.ciphersuites is not None:
        openssl.set_ciphersuites(context, settings.ciphersuites)
    if settings.groups is not None:
        openssl.set_groups(context, settings.groups)
    if cert_pem is not None and key_pem is not None:
        with pem_file(cert_pem) as cert_path, pem_file(key_pem) as key_path:
            context.load_cert_chain(cert_path, key_path)
    return context


def _set_versions(context: ssl.SSLContext, settings: TlsSettings) -> None:
    highest = ssl.TLSVersion.TLSv1_3 if ssl.HAS_TLSv1_3 else ssl.TLSVersion.TLSv1_2
    minimum = TLS_VERSIONS.get(settings.version_min, ssl.TLSVersion.TLSv1_2)
    if settings.or_highest and minimum > highest:
        minimum = highest
    context.minimum_version = minimum
    if settings.version_max is not None:
        context.maximum_version = TLS_VERSIONS[settings.version_max]


def openvpn_subject(name: x509.Name) -> str:
    """A subject as OpenVPN prints it and ``verify-x509-name ... subject`` compares it."""
    parts = []
    for attribute in name:
        label = _OPENSSL_NAMES.get(attribute.oid, attribute.rfc4514_attribute_name)
        parts.append(f"{label}={attribute.value!s}")
    return ", ".join(parts)


def check_peer_certificate(der: bytes, requirements: PeerRequirements) -> None:
    """Apply ``peer-fingerprint``, ``remote-cert-tls server`` and ``verify-x509-name``; raise
    CertificateError."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        # OpenSSL verified its chain, yet cryptography cannot read it: fail closed.
        raise CertificateError("server certificate cannot be parsed") from None
    if requirements.fingerprints and cert.fingerprint(hashes.SHA256()) not in (
        requirements.fingerprints
    ):
        raise CertificateError("server certificate does not match peer-fingerprint")
    if requirements.remote_cert_tls_server:
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            raise CertificateError(
                "server certificate has no extended key usage (remote-cert-tls server)"
            ) from None
        if ExtendedKeyUsageOID.SERVER_AUTH not in usages:
            raise CertificateError(
                "server certificate lacks serverAuth usage (remote-cert-tls server)"
            )
    if requirements.x509_name is None:
        return
    common_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    wanted = requirements.x509_name
    if requirements.x509_name_type == "subject":
        matched = openvpn_subject(cert.subject) == wanted
    elif requirements.x509_name_type == "name":
        matched = wanted in common_names
    else:
        matched = any(name.startswith(wanted) for name in common_names)
    if not matched:
        raise CertificateError(
            f"server certificate does not match verify-x509-name ({requirements.x509_name_type})"
        )
