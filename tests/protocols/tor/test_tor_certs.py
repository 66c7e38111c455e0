"""CERTS validation on the real tor relay's certificates (``tor.json``), and on each way a
CERTS cell can fail to prove the identity a bridge line names."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509

from tests.vectors.tor import captures
from vpnwatch.protocols.tor.certs import (
    CertsError,
    IdentityMismatch,
    verify_responder_certs,
)

HOUR = 3600.0


def verify(certs: dict[int, bytes], **changes: object) -> str:
    capture = captures()["link"]
    tls = changes.get("tls", capture.tls_certificate)
    fingerprint = changes.get("fingerprint", capture.fingerprint)
    now = changes.get("now", capture.unix_time)
    identity = verify_responder_certs(certs, tls, fingerprint, now)  # type: ignore[arg-type]
    return identity.describe()


def test_the_real_relay_proves_its_fingerprint_and_ed25519_identity() -> None:
    capture = captures()["link"]
    described = verify(capture.certs())
    assert described.startswith(f"relay {capture.fingerprint} (Ed25519 ")
    assert verify(capture.certs(), fingerprint=capture.fingerprint.lower())


def test_the_tls_link_certificate_is_the_one_tls_presented() -> None:
    capture = captures()["link"]
    assert capture.certs()[1] == capture.tls_certificate


def test_another_fingerprint_is_an_identity_mismatch() -> None:
    with pytest.raises(IdentityMismatch, match="not the bridge line's 0000"):
        verify(captures()["link"].certs(), fingerprint="0" * 40)


def test_rsa_only_relays_are_checked_with_the_link_certificate() -> None:
    certs = {k: v for k, v in captures()["link"].certs().items() if k in (1, 2)}
    assert "Ed25519" not in verify(certs)


def test_the_ed25519_chain_alone_binds_tls_without_the_link_certificate() -> None:
    certs = {k: v for k, v in captures()["link"].certs().items() if k != 1}
    assert "Ed25519" in verify(certs)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def changed(kind: int, change: Callable[[bytes], bytes]) -> dict[int, bytes]:
    certs = dict(captures()["link"].certs())
    certs[kind] = change(certs[kind])
    return certs


@pytest.mark.parametrize(
    ("certs", "message"),
    [
        pytest.param(changed(2, lambda c: flip(c, len(c) - 1)), "identity certificate is not signed", id="id-signature"),
        pytest.param(changed(1, lambda c: flip(c, len(c) - 1)), "TLS link certificate is not signed", id="link-signature"),
        pytest.param(changed(4, lambda c: flip(c, len(c) - 1)), "type 4 is not signed", id="ed-signing-signature"),
        pytest.param(changed(4, lambda c: flip(c, 10)), "type 4", id="ed-signing-key"),
        pytest.param(changed(5, lambda c: flip(c, len(c) - 1)), "type 5 is not signed", id="ed-link-signature"),
        pytest.param(changed(7, lambda c: flip(c, len(c) - 1)), "cross-certificate is not signed", id="crosscert-signature"),
        pytest.param(changed(7, lambda c: flip(c, 0)), "vouches for another", id="crosscert-key"),
        pytest.param(changed(7, lambda c: c[:-1]), "cross-certificate is malformed", id="crosscert-short"),
        pytest.param(changed(5, lambda c: c[:50]), "too short", id="ed-link-short"),
        pytest.param(changed(2, lambda c: c[:-5]), "not well-formed DER", id="id-truncated"),
        pytest.param({k: v for k, v in captures()["link"].certs().items() if k != 2}, "no RSA identity", id="no-id"),
        pytest.param({k: v for k, v in captures()["link"].certs().items() if k != 5}, "part of an Ed25519 chain", id="partial-ed"),
        pytest.param({k: v for k, v in captures()["link"].certs().items() if k in (2,)}, "no TLS link", id="no-link"),
        pytest.param(changed(2, lambda c: captures()["link"].certs()[1]), "not a 1024-bit RSA", id="id-is-link-cert"),
    ],
)  # fmt: skip
def test_certificates_that_prove_nothing(certs: dict[int, bytes], message: str) -> None:
    with pytest.raises(CertsError, match=message) as raised:
        verify(certs)
    assert not isinstance(raised.value, IdentityMismatch)


def test_a_tls_certificate_the_chain_does_not_name() -> None:
    other = captures()["link"].certs()[2]  # a well-formed certificate, but not the link's
    with pytest.raises(CertsError, match="TLS link certificate's key is not the one TLS used"):
        verify(captures()["link"].certs(), tls=other)
    only_ed = {k: v for k, v in captures()["link"].certs().items() if k != 1}
    with pytest.raises(CertsError, match="Ed25519 link certificate is for another TLS"):
        verify(only_ed, tls=other)


def test_certificates_are_checked_at_now() -> None:
    certs = captures()["link"].certs()
    link = x509.load_der_x509_certificate(certs[1])
    with pytest.raises(CertsError, match=r"valid .* not now"):
        verify(certs, now=link.not_valid_after_utc.timestamp() + HOUR)
    with pytest.raises(CertsError, match=r"valid .* not now"):
        verify(certs, now=link.not_valid_before_utc.timestamp() - HOUR)
    expires = int.from_bytes(certs[5][2:6], "big") * HOUR
    only_ed = {k: v for k, v in certs.items() if k != 1}
    with pytest.raises(CertsError, match=r"expired|not now"):
        verify(only_ed, now=expires + HOUR)


def test_a_key_cryptography_reads_only_when_asked_is_still_a_certs_error() -> None:
    """Found by fuzzing: ``cryptography`` parses a certificate's key lazily, so a damaged key got
    past loading and raised ValueError out of the check."""
    rsa_key_header = bytes.fromhex("2a864886f70d010101050003")  # rsaEncryption, NULL, BIT STRING
    certs = changed(2, lambda c: c.replace(rsa_key_header, rsa_key_header[:-1] + b"\x04"))
    with pytest.raises(CertsError, match="not well-formed DER"):
        verify(certs)
