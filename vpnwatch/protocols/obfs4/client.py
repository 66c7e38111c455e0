"""The obfs4 probe's machine: the client handshake, then whatever runs through the session.

Stages: ``handshake`` (the server's hello found, its MAC checked and its ntor AUTH verified),
then the stages of the machine carried inside the session, if any: the Tor link handshake to the
relay a bridge fronts (:mod:`vpnwatch.protocols.tor`), or an echo for backends that echo
(:mod:`vpnwatch.protocols.obfs4.echo`). A bridge given the wrong cert stays silent, so that shows
as ``timeout``, as it does for a censor that drops the flow; an AUTH that does not verify is
``auth``; anything malformed, ``protocol``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vpnwatch.protocols.machine import Failed, Machine, MachineBase, StageCompleted
from vpnwatch.protocols.obfs4.elligator import ElligatorKeypair
from vpnwatch.protocols.obfs4.errors import Obfs4Error, ServerAuthFailed
from vpnwatch.protocols.obfs4.events import DataReceived, HelloAccepted
from vpnwatch.protocols.obfs4.handshake import ClientHandshake
from vpnwatch.protocols.obfs4.session import Obfs4Session
from vpnwatch.result import Failure

HANDSHAKE_DONE = "server AUTH verified"


class Obfs4Client(MachineBase):
    """One probe of one bridge, and of ``inner`` through its session once the handshake is done.

    ``unix_time`` picks the epoch hour the MACs are keyed with; ``random_bytes``, ``keypair`` and
    ``pad_length`` fix what is random, so a captured exchange with a real bridge replays exactly.
    """

    def __init__(
        self,
        node_id: bytes,
        identity_key: bytes,
        *,
        unix_time: float,
        inner: Machine | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        keypair: ElligatorKeypair | None = None,
        pad_length: int | None = None,
    ) -> None:
        super().__init__()
        self.stages = ("handshake", *(inner.stages if inner is not None else ()))
        self._handshake = ClientHandshake(
            node_id,
            identity_key,
            now=unix_time,
            random_bytes=random_bytes,
            keypair=keypair,
            pad_length=pad_length,
        )
        self._inner = inner
        self._session: Obfs4Session | None = None

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
                self._advance_handshake(now)
            else:
                self._session.receive_data(data)
                self._advance_inner(now)
        except ServerAuthFailed as exc:
            self._fail(Failure.AUTH, str(exc))
        except Obfs4Error as exc:
            self._fail(Failure.PROTOCOL, str(exc))

    def timer(self) -> float | None:
        return self._inner.timer() if self._session is not None and self._inner else None

    def handle_timer(self, now: float) -> None:
        if self._session is not None and self._inner is not None and not self.finished:
            self._inner.handle_timer(now)
            self._flush_inner(now)

    def timed_out(self) -> Failed:
        if self._session is not None and self._inner is not None:
            return self._inner.timed_out()
        return super().timed_out()

    def _advance_handshake(self, now: float) -> None:
        hello = self._handshake.next_event()
        if not isinstance(hello, HelloAccepted):
            return
        self._emit(StageCompleted("handshake"))
        if self._inner is None:
            self._complete(HANDSHAKE_DONE)
            return
        self._session = Obfs4Session.for_client(hello.key_material)
        self._inner.start(now)
        self._flush_inner(now)
        self._session.receive_data(hello.trailing)
        self._advance_inner(now)

    def _advance_inner(self, now: float) -> None:
        assert self._session is not None and self._inner is not None
        # Every frame that arrived is opened before the inner machine sees any of it: a frame that
        # fails authentication fails the probe even when the bytes before it would complete it.
        received = []
        while isinstance(event := self._session.next_event(), DataReceived):
            received.append(event.data)
        if received:
            self._inner.receive(b"".join(received), now)
            self._flush_inner(now)

    def _flush_inner(self, now: float) -> None:
        """Frame what the inner machine wants sent, and pass on what it reported."""
        assert self._session is not None and self._inner is not None
        for chunk in self._inner.data_to_send(now):
            self._send(self._session.send(chunk))
        self._relay_events(self._inner, HANDSHAKE_DONE)
