"""A throwaway certificate authority for the lab's TLS and OpenVPN servers.

Fresh keys every run, valid for two days, ECDSA P-256: what real deployments issue, with the key
usages OpenVPN's ``remote-cert-tls`` checks (digitalSignature/keyAgreement plus the serverAuth or
clientAuth extended usage).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=2)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as PEM text."""

    cert: str
    key: str

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.crt`` and ``stem.key`` (owner-only); returns their paths."""
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_text(self.cert)
        key.write_text(self.key)
        key.chmod(0o600)
        return cert, key


def _key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _new_key(rsa_bits: int | None) -> PrivateKey:
    if rsa_bits is None:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


@dataclass(frozen=True)
class CertificateAuthority:
    key: PrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str = "vpnwatch lab CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def cert(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        """The CA's own key: a self-signed server uses its CA certificate as its certificate."""
        return _key_pem(self.key)

    def intermediate(self, name: str) -> CertificateAuthority:
        """A CA whose certificate this one signs: leaves it issues need it as their chain."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            _builder(_name(name), self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return CertificateAuthority(key, certificate)

    def issue(
        self,
        common_name: str,
        *,
        server: bool,
        sans: tuple[str, ...] = (),
        rsa_bits: int | None = None,
        expired: bool = False,
        usage: bool = True,
    ) -> Issued:
        """A leaf certificate: ``server`` gives it the serverAuth usage, else clientAuth.

        ``rsa_bits`` makes an RSA key of that size instead of P-256 (a weak key for
        ``tls-cert-profile`` tests), ``expired`` one that expired yesterday, and ``usage=False``
        one without an extended key usage (which ``remote-cert-tls`` refuses).
        """
        key = _new_key(rsa_bits)
        builder = (
            _builder(_name(common_name), self.certificate.subject, key.public_key(), expired)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False, rsa=rsa_bits is not None), critical=True)
        )
        if usage:
            purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
            builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        if sans:
            names = [_general_name(san) for san in sans]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        return Issued(certificate.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))

    def crl(self, revoked: tuple[str, ...] = ()) -> str:
        """A CRL (PEM) revoking the certificates ``revoked`` (PEM), valid for the lab's days."""
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - datetime.timedelta(hours=1))
            .next_update(now + _VALIDITY)
        )
        for pem in revoked:
            serial = x509.load_pem_x509_certificate(pem.encode()).serial_number
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - datetime.timedelta(minutes=5))
                .build()
            )
        return (
            builder.sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    expired: bool = False,
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    if expired:
        now -= 2 * _VALIDITY + datetime.timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
    )


def _key_usage(*, ca: bool, rsa: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=rsa,
        data_encipherment=False,
        key_agreement=not ca and not rsa,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(san: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)
