"""What the obfs4 probe runs through a session whose backend echoes: bytes out, the same back.

Only lab bridges and test backends echo; a real bridge fronts a Tor relay, which the Tor link
check (:mod:`vpnwatch.protocols.tor`) speaks to instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vpnwatch.protocols.machine import Failed, MachineBase, StageCompleted
from vpnwatch.result import Failure

#: Spans two obfs4 frames, so the echo exercises frame boundaries in both directions.
ECHO_LENGTH = 2048


class EchoCheck(MachineBase):
    """Sends ``ECHO_LENGTH`` random bytes and completes once exactly they have come back."""

    stages: tuple[str, ...] = ("data",)

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        super().__init__()
        self._random = random_bytes
        self._sent = b""
        self._received = b""

    def start(self, now: float) -> None:
        super().start(now)
        self._sent = self._random(ECHO_LENGTH)
        self._send(self._sent)

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        self._received += data
        if len(self._received) < len(self._sent):
            return
        if self._received[: len(self._sent)] != self._sent:
            self._fail(Failure.PROTOCOL, "the bytes echoed through the session differ")
            return
        self._emit(StageCompleted("data"))
        self._complete(f"{ECHO_LENGTH} bytes echoed through the session")

    def timed_out(self) -> Failed:
        return Failed(Failure.TIMEOUT, "the bytes sent through the session did not come back")
