"""The control checks as machines: a TCP connect, a TLS handshake, a DNS query.

They are not VPNs; they tell a blocked endpoint from a vantage point whose own network is down.
The TCP check has no stage of its own (the driver's ``connect`` is all it proves); the TLS check
proves ``tls`` (the certificate verified for the server name); the DNS check proves ``answer``
(the resolver answered the question asked, under the query id we chose).
"""

from __future__ import annotations

import secrets
import ssl

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from vpnwatch.protocols.machine import MachineBase, StageCompleted
from vpnwatch.protocols.tls import TlsChannel, TlsError, tls_failure
from vpnwatch.result import Failure


class TcpCheck(MachineBase):
    """Done as soon as the connection is up."""

    def start(self, now: float) -> None:
        super().start(now)
        self._complete()

    def receive(self, data: bytes, now: float) -> None:
        """Nothing the server sends matters: the connection being up was the whole check."""


class TlsCheck(MachineBase):
    """A TLS handshake whose certificate chain and name verify against ``context``."""

    stages: tuple[str, ...] = ("tls",)

    def __init__(self, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__()
        self._tls = TlsChannel(context, server_hostname=server_name)

    def start(self, now: float) -> None:
        super().start(now)
        self._advance()

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if not data:
            self._fail(Failure.EOF, "the server closed the connection during the TLS handshake")
            return
        self._tls.receive(data)
        self._advance()

    def _advance(self) -> None:
        try:
            established = self._tls.advance()
        except TlsError as exc:
            self._fail(tls_failure(exc), str(exc))
            return
        if out := self._tls.data_to_send():
            self._send(out)
        if established:
            self._emit(self._tls.certificate_verified())
            self._emit(StageCompleted("tls"))
            self._complete(self._tls.version)


class DnsCheck(MachineBase):
    """One query; stray or malformed datagrams are ignored while it waits for its answer."""

    stages: tuple[str, ...] = ("answer",)

    def __init__(self, name: str, record_type: str, *, query_id: int | None = None) -> None:
        super().__init__()
        self._query = dns.message.make_query(name, record_type)
        # An off-path spoofer must guess it.
        self._query.id = secrets.randbelow(1 << 16) if query_id is None else query_id
        self.ignored = 0

    def start(self, now: float) -> None:
        super().start(now)
        self._send(self._query.to_wire())

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        try:
            reply = dns.message.from_wire(data)
        except dns.exception.DNSException:
            self.ignored += 1
            return
        if not (reply.flags & dns.flags.QR and self._query.is_response(reply)):
            self.ignored += 1
            return
        rcode = reply.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self._fail(Failure.PROTOCOL, f"the resolver answered {dns.rcode.to_text(rcode)}")
            return
        self._emit(StageCompleted("answer"))
        records = sum(len(rrset) for rrset in reply.answer)
        self._complete(f"{dns.rcode.to_text(rcode)}, {records} records")
