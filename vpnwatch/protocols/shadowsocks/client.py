"""The Shadowsocks probe's machine: one request through the server, and its answer verified.

The client sends its salt and, in the first chunks, the destination's address and the request;
the server relays it and answers with its own salt and chunks. Stage ``data`` needs both proofs:
the answer's chunks open under the password's key (the server holds it), and the plaintext is
the destination's answer (the server relayed the request). Below the Shadowsocks stream a
:class:`~vpnwatch.protocols.layers.stack.LayerStack` may add a SIP003 plugin's layers, whose
own stages (``tls``, ``websocket``) come first.

What a wrong password or cipher looks like: servers resist active probing, so they never say
so. shadowsocks-libev reads the salt and the first chunk, fails to open it and closes the
connection (``eof``; a ``reset`` when our bytes were still unread); others wait in silence
(``timeout``). Neither is proof of anything, so neither is classed ``auth``: that needs an
answer that fails to open under our key.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vpnwatch.protocols.layers.stack import LayerFailed, LayerStack
from vpnwatch.protocols.machine import Failed, MachineBase, StageCompleted
from vpnwatch.protocols.relayed import Destination, encode_address, is_http_reply
from vpnwatch.protocols.shadowsocks.aead import Cipher, DecryptionFailed, Opener, Sealer
from vpnwatch.result import Failure

#: More answer than this without a verdict is not the destination we asked for.
MAX_ANSWER = 1 << 20
#: How much of the answer is kept as it came, to recognise an HTTP status line.
HTTP_PREFIX = 64


class ShadowsocksClient(MachineBase):
    """One probe of one server with ``cipher`` and the password's ``key``.

    ``random_bytes`` draws the salt, the echo payload and every plugin nonce, so a captured
    exchange with the real server replays exactly.
    """

    def __init__(
        self,
        cipher: Cipher,
        key: bytes,
        destination: Destination,
        *,
        layers: LayerStack | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self._stack = layers or LayerStack()
        self.stages = (*self._stack.stages, "data")
        self._cipher = cipher
        self._key = key
        self._destination = destination
        self._random = random_bytes
        self._check = destination.check(random_bytes)
        self._opener = Opener(cipher, key)
        self._answer = b""
        self._raw = b""  # the answer's first bytes as they came, to recognise a web server

    def start(self, now: float) -> None:
        super().start(now)
        sealer = Sealer(self._cipher, self._key, self._random(self._cipher.key_length))
        request = encode_address(self._destination.host, self._destination.port)
        self._stack.open()
        self._stack.send(sealer.seal(request + self._check.request))
        self._flush()

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        failed: tuple[Failure, str] | None = None
        try:
            payload = self._stack.receive(data) if data else b""
            self._raw += payload[: HTTP_PREFIX - len(self._raw)]
            self._answer += self._opener.open(payload)
        except LayerFailed as exc:
            failed = exc.failure, exc.detail
        except DecryptionFailed:
            if is_http_reply(self._raw):  # a web server, not Shadowsocks: a plugin is missing
                line = self._raw.partition(b"\r\n")[0].decode("ascii", "replace")
                failed = Failure.PROTOCOL, f"the server answered {line!r}, not Shadowsocks"
            else:
                failed = Failure.AUTH, "the answer does not decrypt with this password and cipher"
        self._flush()  # a layer's stages come before its failure
        if failed is not None:
            self._fail(*failed)
            return
        ended = not data or self._stack.ended
        if self._opener.chunks == 0:
            if ended:
                self._fail(
                    Failure.EOF,
                    "the server closed the connection without answering"
                    " (a wrong password or cipher, an unreachable destination, or a censor)",
                )
            return
        verdict = self._check.judge(self._answer, ended)
        if verdict is None:
            if len(self._answer) > MAX_ANSWER:
                self._fail(Failure.PROTOCOL, "the answer never matched the destination's")
            return
        ok, detail = verdict
        if not ok:
            self._fail(Failure.PROTOCOL, f"the server holds the key, but {detail}")
            return
        self._emit(StageCompleted("data"))
        self._complete(f"{self._cipher.name}: answer decrypted; {detail}")

    def timed_out(self) -> Failed:
        if self._opener.chunks:
            return Failed(Failure.TIMEOUT, "the destination's answer did not come through whole")
        return Failed(Failure.TIMEOUT, "no answer through the server")

    def _flush(self) -> None:
        for event in self._stack.events():
            self._emit(event)
        if out := self._stack.data_to_send():
            self._send(out)
