"""The one contract every protocol machine follows: bytes and ``now`` in, bytes and events out.

A machine is a probe's whole conversation with one peer, without I/O, modelled on aioquic's
connection: the driver calls :meth:`Machine.start` once the transport is up, hands it what arrives
with :meth:`Machine.receive`, sends what :meth:`Machine.data_to_send` returns, wakes it at
:meth:`Machine.timer` through :meth:`Machine.handle_timer`, and drains :meth:`Machine.next_event`
after every call. Time is a monotonic ``now`` the driver passes in; machines read no clock and
draw no randomness they were not handed, so every one of them can replay a captured transcript.

Errors split the way h11 splits them. What the peer did (a reply that fails authentication, a
malformed message, a close mid-handshake) is a :class:`Failed` event carrying a
:class:`~vpnwatch.result.Failure`: after it the machine is finished and ignores what follows. What
the caller did wrong (calling a machine out of order) raises :class:`LocalProtocolError`: a bug in
vpnwatch, never a verdict on a peer. What the monitor's own host refused raises
:class:`~vpnwatch.result.LocalError`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from vpnwatch.result import Failure, TunnelQuality


class Event:
    """Base of everything a machine reports."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class StageCompleted(Event):
    """The peer proved one more stage of the protocol (see :attr:`Machine.stages`)."""

    stage: str


@dataclass(frozen=True, slots=True)
class CertificateVerified(Event):
    """The server's certificate passed every check; it is valid until ``not_after`` (Unix time)."""

    not_after: float


@dataclass(frozen=True, slots=True)
class TunnelMeasured(Event):
    """What a tunnel test measured; emitted once, before it completes or fails."""

    quality: TunnelQuality


@dataclass(frozen=True, slots=True)
class Redirected(Event):
    """The conversation continues on another port of the same peer address (IKEv2's move to NAT-T
    port 4500). The driver points its link there before it sends anything more; a machine that
    emits this holds its next datagram until a timer it sets at once."""

    port: int


@dataclass(frozen=True, slots=True)
class Completed(Event):
    """Every stage is done: the probe succeeded. ``detail`` is one human line, never a secret."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Failed(Event):
    """The peer or the network ended the conversation; the machine accepts nothing more."""

    failure: Failure
    detail: str


#: How many inputs a machine takes before a driver gives up on a flood that never ends; a
#: machine that expects more (a tunnel test: replies to its echoes) raises its own budget.
MAX_INPUTS = 1024


class LocalProtocolError(RuntimeError):
    """A machine was used out of order: a bug in its caller, not the peer's doing."""


class Machine(Protocol):
    """What a driver needs of any protocol machine."""

    #: The stages this machine proves, in order; a failure is blamed on the first not yet reached.
    stages: tuple[str, ...]
    #: True once it completed or failed: it ignores any further input.
    finished: bool
    #: How many inputs it may take in all; it may grow as the conversation goes on.
    input_budget: int

    def start(self, now: float) -> None:
        """The transport is up: queue the first bytes."""

    def receive(self, data: bytes, now: float) -> None:
        """A datagram, or the next bytes of a stream; ``b""`` is the end of the stream."""

    def data_to_send(self, now: float) -> list[bytes]:
        """Datagrams (or stream chunks, in order) to send now."""
        ...

    def next_event(self) -> Event | None:
        """The next event, or None until more input or a timer."""
        ...

    def timer(self) -> float | None:
        """When to call :meth:`handle_timer`, on the clock ``now`` comes from; None for never."""
        ...

    def handle_timer(self, now: float) -> None:
        """The time from :meth:`timer` has come: retransmit, give up, or move on."""

    def timed_out(self) -> Failed:
        """The probe's time ran out: what this machine saw points to this failure."""
        ...


class MachineBase:
    """The bookkeeping every machine shares: queued output, queued events, the end state.

    Subclasses call :meth:`_send` and :meth:`_emit`, end with :meth:`_complete` or :meth:`_fail`,
    and check :attr:`finished` before acting on input; they override what their protocol needs.
    """

    stages: tuple[str, ...] = ()
    input_budget: int = MAX_INPUTS

    def __init__(self) -> None:
        self._outgoing: list[bytes] = []
        self._events: deque[Event] = deque()
        self._started = False
        self.finished = False

    def start(self, now: float) -> None:
        if self._started:
            raise LocalProtocolError(f"{type(self).__name__} was started twice")
        self._started = True

    def data_to_send(self, now: float) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        """Nothing is due unless a subclass set a timer."""

    def timed_out(self) -> Failed:
        return Failed(Failure.TIMEOUT, "no valid answer in time")

    def _send(self, data: bytes) -> None:
        self._outgoing.append(data)

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _complete(self, detail: str = "") -> None:
        self.finished = True
        self._events.append(Completed(detail))

    def _fail(self, failure: Failure, detail: str) -> None:
        self.finished = True
        self._events.append(Failed(failure, detail))

    def _relay_events(self, inner: Machine, done: str = "") -> None:
        """Pass on the events of ``inner``, a machine whose bytes this one carries.

        A protocol that wraps another (obfs4 around Tor's TLS link, TLS around Tor's cells) ends
        when the inner one does: its stages become this machine's, its failure this machine's
        failure, and its completion this one's, with ``done`` (what the outer layer proved)
        before the inner detail.
        """
        while (event := inner.next_event()) is not None:
            if isinstance(event, Completed):
                self._complete("; ".join(part for part in (done, event.detail) if part))
            elif isinstance(event, Failed):
                self._fail(event.failure, event.detail)
            else:
                self._emit(event)
