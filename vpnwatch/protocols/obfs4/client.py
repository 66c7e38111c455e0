"""The obfs4 probe's machine: the client handshake, then (optionally) an echo through the session.

Stages: ``handshake`` (the server's hello found, its MAC checked and its ntor AUTH verified), then
``data`` for bridges whose backend echoes (random bytes sent through the session came back whole).
A bridge given the wrong cert stays silent, so that shows as ``timeout``, as it does for a censor
that drops the flow; an AUTH that does not verify is ``auth``; anything malformed, ``protocol``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vpnwatch.protocols.machine import MachineBase, StageCompleted
from vpnwatch.protocols.obfs4.elligator import ElligatorKeypair
from vpnwatch.protocols.obfs4.errors import Obfs4Error, ServerAuthFailed
from vpnwatch.protocols.obfs4.events import DataReceived, HelloAccepted
from vpnwatch.protocols.obfs4.handshake import ClientHandshake
from vpnwatch.protocols.obfs4.session import Obfs4Session
from vpnwatch.result import Failure

#: Spans two frames, so the echo exercises frame boundaries in both directions.
ECHO_LENGTH = 2048


class Obfs4Client(MachineBase):
    """One probe of one bridge.

    ``unix_time`` picks the epoch hour the MACs are keyed with; ``random_bytes``, ``keypair`` and
    ``pad_length`` fix what is random, so a captured exchange with a real bridge replays exactly.
    """

    def __init__(
        self,
        node_id: bytes,
        identity_key: bytes,
        *,
        unix_time: float,
        echo: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
        keypair: ElligatorKeypair | None = None,
        pad_length: int | None = None,
    ) -> None:
        super().__init__()
        self.stages = ("handshake", "data") if echo else ("handshake",)
        self._handshake = ClientHandshake(
            node_id,
            identity_key,
            now=unix_time,
            random_bytes=random_bytes,
            keypair=keypair,
            pad_length=pad_length,
        )
        self._random = random_bytes
        self._echo = echo
        self._session: Obfs4Session | None = None
        self._sent = b""
        self._received = b""

    def start(self, now: float) -> None:
        super().start(now)
        self._send(self._handshake.data_to_send())

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if not data:
            self._fail(Failure.EOF, "the bridge closed the connection")
            return
        try:
            if self._session is None:
                self._handshake.receive_data(data)
                self._advance_handshake()
            else:
                self._session.receive_data(data)
                self._advance_echo()
        except ServerAuthFailed as exc:
            self._fail(Failure.AUTH, str(exc))
        except Obfs4Error as exc:
            self._fail(Failure.PROTOCOL, str(exc))

    def _advance_handshake(self) -> None:
        hello = self._handshake.next_event()
        if not isinstance(hello, HelloAccepted):
            return
        self._emit(StageCompleted("handshake"))
        if not self._echo:
            self._complete("server AUTH verified")
            return
        self._session = Obfs4Session.for_client(hello.key_material)
        self._sent = self._random(ECHO_LENGTH)
        self._send(self._session.send(self._sent))
        self._session.receive_data(hello.trailing)
        self._advance_echo()

    def _advance_echo(self) -> None:
        assert self._session is not None
        while isinstance(event := self._session.next_event(), DataReceived):
            self._received += event.data
        if len(self._received) < len(self._sent):
            return
        if self._received[: len(self._sent)] != self._sent:
            self._fail(Failure.PROTOCOL, "the bytes echoed through the session differ")
            return
        self._emit(StageCompleted("data"))
        self._complete(f"server AUTH verified; {ECHO_LENGTH} bytes echoed through the session")
