"""A Tor link as a machine on a byte stream: TLS, then the link handshake inside it.

Tor's TLS proves nothing by itself: relays present a throwaway certificate no CA signed, and the
identity is proved afterwards, by the CERTS cell that binds this very certificate to the relay's
keys (:mod:`vpnwatch.protocols.tor.certs`). So the TLS context here checks no chain or name; it
hands the certificate it saw to :class:`~vpnwatch.protocols.tor.link.TorLinkClient`, which does.
The stream is whatever carries it: obfs4's session for a bridge, or a plain TCP connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from functools import cache

from vpnwatch.protocols.machine import Failed, Machine, MachineBase
from vpnwatch.protocols.tls import TlsChannel, TlsError
from vpnwatch.protocols.tor.cells import Address
from vpnwatch.protocols.tor.link import TorLinkClient
from vpnwatch.result import Failure


@cache
def tor_tls_context() -> ssl.SSLContext:
    """TLS 1.2 or 1.3 with no certificate checks (the CERTS cell is the check), no resumption."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class TorChannelClient(MachineBase):
    """TLS to a relay, then the cell machine ``link(certificate)`` builds over it.

    The stages are the link's. :meth:`for_relay` builds the usual one; the constructor exists so
    that a capture can record the cells that pass in the clear inside TLS.
    """

    stages: tuple[str, ...] = TorLinkClient.stages

    def __init__(self, link: Callable[[bytes], Machine]) -> None:
        super().__init__()
        self._link_for = link
        self._certificate = b""
        self._tls = TlsChannel(tor_tls_context(), check=self._keep_certificate)
        self._link: Machine | None = None

    @classmethod
    def for_relay(
        cls,
        fingerprint: str,
        *,
        unix_time: float,
        peer_address: Address | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> TorChannelClient:
        """A link to the relay whose identity has ``fingerprint`` (see :class:`TorLinkClient`)."""
        return cls(
            lambda certificate: TorLinkClient(
                fingerprint,
                certificate,
                unix_time=unix_time,
                peer_address=peer_address,
                random_bytes=random_bytes,
            )
        )

    def _keep_certificate(self, der: bytes) -> None:
        self._certificate = der

    def start(self, now: float) -> None:
        super().start(now)
        self._advance(now)

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if not data:
            stage = "in the TLS handshake" if self._link is None else "mid-link"
            self._fail(Failure.EOF, f"the relay closed the connection {stage}")
            return
        self._tls.receive(data)
        self._advance(now)

    def timed_out(self) -> Failed:
        if self._link is None:
            return Failed(Failure.TIMEOUT, "no TLS handshake with the relay")
        return self._link.timed_out()

    def _advance(self, now: float) -> None:
        try:
            if self._link is None and self._tls.advance():
                self._link = self._link_for(self._certificate)
                self._link.start(now)
            if self._link is not None:
                if plaintext := self._tls.read():
                    self._link.receive(plaintext, now)
                for cells in self._link.data_to_send(now):
                    self._tls.write(cells)
        except TlsError as exc:
            self._fail(Failure.TLS, str(exc))
            return
        if records := self._tls.data_to_send():
            self._send(records)
        if self._link is not None:
            self._relay_events(self._link)
