"""An AnyConnect probe: TLS with the server's certificate verified, then the session inside it.

Stages: ``tls`` (the certificate chain and name verified, or its key matched the configured
``pin-sha256:``), then the :class:`~.session.AnyConnectSession`'s ``auth`` and ``tunnel``.
A TLS alert after the handshake that rejects our client certificate is ``auth`` (the server
refused our credentials); any other TLS failure is ``tls``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vpnwatch.protocols.anyconnect.session import AnyConnectSession
from vpnwatch.protocols.machine import Completed, Failed, MachineBase, StageCompleted
from vpnwatch.protocols.tls import CertificateError, TlsChannel, TlsError, tls_failure
from vpnwatch.result import Failure

PIN_PREFIX = "pin-sha256:"
#: Alerts a server sends when it does not accept the client's certificate (OpenSSL's names).
_CLIENT_CERT_ALERTS = (
    "ALERT_BAD_CERTIFICATE",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_ACCESS_DENIED",
)


def public_key_pin(der: bytes) -> str:
    """``pin-sha256:`` of a certificate: SHA-256 of its SubjectPublicKeyInfo, as openconnect
    prints it (``FINGERPRINT=``) and takes it (``--servercert``)."""
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return PIN_PREFIX + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def pin_check(pin: str) -> Callable[[bytes], None]:
    """A certificate check that accepts exactly the server key ``pin`` names."""

    def check(der: bytes) -> None:
        if public_key_pin(der) != pin:
            raise CertificateError("server certificate: its key does not match the pinned one")

    return check


class AnyConnectClient(MachineBase):
    """TLS around an :class:`AnyConnectSession`: bytes of the TCP stream in and out."""

    stages: tuple[str, ...] = ("tls", *AnyConnectSession.stages)

    def __init__(self, tls: TlsChannel, session: AnyConnectSession) -> None:
        super().__init__()
        self._tls = tls
        self._session = session

    def start(self, now: float) -> None:
        super().start(now)
        self._advance(now)

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if not data:
            if self._tls.established:
                self._session.receive(b"", now)
                self._pump(now)
            else:
                self._fail(Failure.EOF, "the server closed the connection during the TLS handshake")
            return
        self._tls.receive(data)
        self._advance(now)

    def timed_out(self) -> Failed:
        if not self._tls.established:
            return Failed(Failure.TIMEOUT, "no answer to the TLS handshake")
        return self._session.timed_out()

    def _advance(self, now: float) -> None:
        if not self._tls.established:
            try:
                established = self._tls.advance()
            except TlsError as exc:
                self._fail(tls_failure(exc), str(exc))
                return
            self._flush()
            if not established:
                return
            self._emit(self._tls.certificate_verified())
            self._emit(StageCompleted("tls"))
            self._session.start(now)
        while not self.finished:
            try:
                plaintext = self._tls.read()
            except TlsError as exc:
                self._session_broke(exc)
                return
            if not plaintext:
                break
            self._session.receive(plaintext, now)
            self._pump(now)
        self._pump(now)

    def _session_broke(self, exc: TlsError) -> None:
        if any(alert in str(exc) for alert in _CLIENT_CERT_ALERTS):
            self._fail(Failure.AUTH, f"{exc} (the server refused our client certificate)")
        else:
            self._fail(Failure.TLS, str(exc))

    def _pump(self, now: float) -> None:
        """Encrypt what the session queued, then pass its events on."""
        for chunk in self._session.data_to_send(now):
            self._tls.write(chunk)
        self._flush()
        while (event := self._session.next_event()) is not None:
            if isinstance(event, Completed):
                self._complete(f"{event.detail} over {self._tls.version}")
            elif isinstance(event, Failed):
                self._fail(event.failure, event.detail)
            else:
                self._emit(event)

    def _flush(self) -> None:
        if out := self._tls.data_to_send():
            self._send(out)
