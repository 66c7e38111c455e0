"""The Trojan probe's machine: TLS to the server, the password's hash, the request, the answer.

Trojan hides behind a real web site: the client sends, inside TLS, the hex SHA-224 of the
password, CRLF, a SOCKS5-style command (CONNECT) and address, CRLF, then the payload. A server
that recognises the hash relays the payload; one that does not hands the whole connection to its
fallback web site, whose HTTP answer then comes back over the same verified TLS. So stage
``tls`` proves the server's certificate, and ``data`` proves the destination's own answer came
back. The fallback's answer is told apart by what it answers to: it reads our hash line as a
request line and answers 400 (so a 400 where the destination's status was expected), and to an
echo destination any HTTP answer is not the echo. Either is ``auth``: the server's own answer,
under its verified certificate, refusing the password. Any other wrong answer is ``protocol``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from vpnwatch.protocols.layers.stack import LayerFailed, LayerStack
from vpnwatch.protocols.machine import Failed, MachineBase, StageCompleted
from vpnwatch.protocols.relayed import Destination, HttpCheck, encode_address, is_http_reply
from vpnwatch.result import Failure

CRLF = b"\r\n"
CONNECT = 1
#: More answer than this without a verdict is not the destination we asked for.
MAX_ANSWER = 1 << 20


def password_line(password: str) -> bytes:
    """The first line a Trojan client sends: the password's SHA-224 in 56 hex digits."""
    return hashlib.sha224(password.encode()).hexdigest().encode()


class TrojanClient(MachineBase):
    """One probe of one Trojan server; ``layers`` holds its TLS (and any layer on top)."""

    def __init__(
        self,
        password: str,
        destination: Destination,
        layers: LayerStack,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self._stack = layers
        self.stages = (*layers.stages, "data")
        self._password = password
        self._destination = destination
        self._check = destination.check(random_bytes)
        self._answer = b""
        self._reached: set[str] = set()

    def start(self, now: float) -> None:
        super().start(now)
        address = encode_address(self._destination.host, self._destination.port)
        self._stack.open()
        self._stack.send(
            password_line(self._password) + CRLF + bytes([CONNECT]) + address + CRLF
            + self._check.request
        )  # fmt: skip
        self._flush()

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        try:
            self._answer += self._stack.receive(data) if data else b""
        except LayerFailed as exc:
            self._flush()
            if self._answer or "tls" not in self._reached:
                self._fail(exc.failure, exc.detail)
                return
            self._fail(Failure.EOF, "the server closed the TLS session without answering")
            return
        self._flush()
        ended = not data or self._stack.ended
        if "tls" not in self._reached:
            if not data:
                self._fail(Failure.EOF, "the server closed the connection during the TLS handshake")
            return
        verdict = self._check.judge(self._answer, ended)
        if verdict is None:
            if ended:
                self._fail(Failure.EOF, "the server closed the connection without answering")
            elif len(self._answer) > MAX_ANSWER:
                self._fail(Failure.PROTOCOL, "the answer never matched the destination's")
            return
        ok, detail = verdict
        if ok:
            self._emit(StageCompleted("data"))
            self._complete(f"{detail} through the verified TLS session")
        elif is_http_reply(self._answer) and (
            not isinstance(self._check, HttpCheck) or b" 400 " in self._answer[:16]
        ):
            self._fail(
                Failure.AUTH,
                f"the server answered with its fallback web site ({detail}):"
                " it did not accept the password",
            )
        elif not self._answer and ended:
            self._fail(Failure.EOF, "the server closed the connection without answering")
        else:
            self._fail(Failure.PROTOCOL, detail)

    def timed_out(self) -> Failed:
        if "tls" in self._reached:
            return Failed(Failure.TIMEOUT, "no answer through the server")
        return Failed(Failure.TIMEOUT, "no TLS handshake")

    def _flush(self) -> None:
        for event in self._stack.events():
            if isinstance(event, StageCompleted):
                self._reached.add(event.stage)
            self._emit(event)
        if out := self._stack.data_to_send():
            self._send(out)
