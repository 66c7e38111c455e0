"""OpenVPN's TLS: the client context and the peer checks the OpenVPN client applies.

The TLS records travel as the payloads of reliable P_CONTROL_V1 messages through the shared
memory-BIO :class:`~vpnwatch.protocols.tls.TlsChannel`. Certificate checks follow the OpenVPN
client: the chain must lead to the config's ``<ca>`` (host names are not checked, OpenVPN does
not), then ``remote-cert-tls server`` and ``verify-x509-name`` are applied to the leaf certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def build_context(
    ca_pem: str, cert_pem: str | None = None, key_pem: str | None = None
) -> ssl.SSLContext:
    """A TLS context for an OpenVPN client: trusts only ``ca_pem``, optionally presents a cert."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # OpenVPN checks names itself (verify-x509-name), see below
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca_pem)
    if cert_pem is not None and key_pem is not None:
        with pem_file(cert_pem) as cert_path, pem_file(key_pem) as key_path:
            context.load_cert_chain(cert_path, key_path)
    return context


def openvpn_subject(name: x509.Name) -> str:
    """A subject as OpenVPN prints it and ``verify-x509-name ... subject`` compares it."""
    parts = []
    for attribute in name:
        label = _OPENSSL_NAMES.get(attribute.oid, attribute.rfc4514_attribute_name)
        parts.append(f"{label}={attribute.value!s}")
    return ", ".join(parts)


def check_peer_certificate(der: bytes, requirements: PeerRequirements) -> None:
    """Apply ``remote-cert-tls server`` and ``verify-x509-name``; raise CertificateError."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        # OpenSSL verified its chain, yet cryptography cannot read it: fail closed.
        raise CertificateError("server certificate cannot be parsed") from None
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
