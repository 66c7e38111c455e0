"""A TLS client whose records travel through memory: ``ssl.SSLObject`` on a pair of memory BIOs.

TLS here never sees a socket: ciphertext goes in with :meth:`TlsChannel.receive` and comes out of
:meth:`TlsChannel.data_to_send`, so the same code runs TLS over a TCP stream (the TLS control),
inside OpenVPN's reliable control channel, or inside any other protocol's framing.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator

from cryptography import x509

from vpnwatch.protocols.machine import CertificateVerified, LocalProtocolError
from vpnwatch.result import Failure


class TlsError(Exception):
    """The TLS handshake or session failed for a reason other than the server's certificate."""


class CertificateError(TlsError):
    """The server's certificate failed verification."""


def tls_failure(exc: TlsError) -> Failure:
    """The failure a broken TLS session is: ``tls_cert`` when the server's certificate failed
    verification, ``tls`` for anything else."""
    return Failure.TLS_CERT if isinstance(exc, CertificateError) else Failure.TLS


@contextlib.contextmanager
def pem_file(pem: str) -> Iterator[str]:
    """A path to ``pem`` that lives only as long as the block: ssl loads keys from paths only.

    On Linux the PEM lives in an anonymous memory file and never touches a disk.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("vpnwatch-pem", 0)
        try:
            os.write(fd, pem.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:  # pragma: no cover - non-Linux fallback
        path = os.path.join(directory, "pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(pem)
        yield path


def _accept(der: bytes) -> None:
    """No check beyond the context's own."""


class TlsChannel:
    """The client side of one TLS session.

    ``check`` sees the server's leaf certificate (DER) once the context has verified its chain,
    and raises :class:`CertificateError` for what the protocol demands beyond that.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        check: Callable[[bytes], None] = _accept,
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._check = check
        self._pending_error: TlsError | None = None
        self.established = False

    def receive(self, records: bytes) -> None:
        """TLS bytes from the server, in order."""
        self._incoming.write(records)

    def data_to_send(self) -> bytes:
        """TLS bytes for the server."""
        return self._outgoing.read()

    def advance(self) -> bool:
        """Drive the handshake as far as the received bytes allow; True once it has completed."""
        if self.established:
            return True
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLCertVerificationError as exc:
            raise CertificateError(f"server certificate: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            raise TlsError(f"TLS handshake failed: {exc.reason or exc.strerror}") from None
        der = self._ssl.getpeercert(binary_form=True)
        if der is None:
            raise CertificateError("server sent no certificate")
        self._check(der)
        self.established = True
        return True

    @property
    def connection(self) -> ssl.SSLObject:
        """The TLS object itself, for what the ``ssl`` module offers no method for."""
        return self._ssl

    @property
    def version(self) -> str:
        return self._ssl.version() or ""

    def certificate_verified(self) -> CertificateVerified:
        """The event that says until when the verified server certificate is valid."""
        der = self._ssl.getpeercert(binary_form=True) if self.established else None
        if der is None:
            raise LocalProtocolError("no certificate was verified yet")
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
        return CertificateVerified(not_after.timestamp())

    def write(self, plaintext: bytes) -> None:
        """Encrypt application data for the server (after the handshake)."""
        self._ssl.write(plaintext)

    def read(self) -> bytes:
        """Decrypted application data received so far; raises TlsError on an alert or close.

        Data that arrived before the alert or close is returned first and the error raised by
        the next call, so that a server's last words (an HTTP 401 before its access-denied
        alert) are read, as a client reading the socket would.
        """
        if self._pending_error is not None:
            raise self._pending_error
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._ssl.read(16384)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._pending_error = TlsError("server closed the TLS session")
                break
            except ssl.SSLError as exc:
                self._pending_error = TlsError(f"TLS session failed: {exc.reason or exc.strerror}")
                break
            if not chunk:
                break
            chunks.append(chunk)
        if not chunks and self._pending_error is not None:
            raise self._pending_error
        return b"".join(chunks)
