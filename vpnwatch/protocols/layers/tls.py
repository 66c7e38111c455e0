"""TLS as a layer (Trojan, v2ray-plugin's ``tls``): :class:`~vpnwatch.protocols.tls.TlsChannel`."""

from __future__ import annotations

import ssl

from vpnwatch.protocols.layers.stack import Layer, LayerFailed
from vpnwatch.protocols.tls import TlsChannel, TlsError, tls_failure
from vpnwatch.result import Failure


class TlsLayer(Layer):
    """A TLS client; ready once the server's certificate verified for ``server_name``."""

    stages = ("tls",)

    def __init__(self, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__()
        self._tls = TlsChannel(context, server_hostname=server_name)

    def open(self) -> None:
        self._advance()

    def receive(self, data: bytes) -> bytes:
        self._tls.receive(data)
        if not self.ready:
            self._advance()
        try:
            return self._tls.read() if self.ready else b""
        except TlsError as exc:
            raise LayerFailed(Failure.TLS, str(exc)) from None
        finally:
            self._down(self._tls.data_to_send())

    def _advance(self) -> None:
        try:
            established = self._tls.advance()
        except TlsError as exc:
            raise LayerFailed(tls_failure(exc), str(exc)) from None
        finally:
            self._down(self._tls.data_to_send())
        if established:
            self._events.append(self._tls.certificate_verified())
            self._become_ready("tls")

    def _wrap(self, payload: bytes) -> None:
        self._tls.write(payload)
        self._down(self._tls.data_to_send())
