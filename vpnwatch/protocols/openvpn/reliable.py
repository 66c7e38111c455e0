"""OpenVPN's reliability layer: numbered messages, ACKs, retransmission, in-order delivery.

Each side numbers its reliable messages from 0. A message is sent again, with exponential
backoff, until the peer ACKs its id; received messages are ACKed (duplicates too: the peer resends
because our ACK was lost) and handed up strictly in order. Time is passed in by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from vpnwatch.protocols.openvpn.packets import Opcode

#: OpenVPN's --tls-timeout default: wait this long before the first retransmission.
INITIAL_RETRANSMIT = 2.0
#: At most this many of our messages are in flight (OpenVPN's TLS_RELIABLE_N_SEND_BUFFERS).
SEND_WINDOW = 6
#: Messages further ahead than this are dropped unACKed (TLS_RELIABLE_N_REC_BUFFERS).
RECEIVE_WINDOW = 12


@dataclass(frozen=True, slots=True)
class Message:
    """One reliable message: its id, the opcode it travels under, and its payload."""

    message_id: int
    opcode: Opcode
    payload: bytes


@dataclass(slots=True)
class _InFlight:
    message: Message
    next_try: float | None = None  # None: not sent yet
    backoff: float = INITIAL_RETRANSMIT


class ReliableLayer:
    """Both directions of one control channel's reliability layer."""

    def __init__(self, *, initial_retransmit: float = INITIAL_RETRANSMIT) -> None:
        self._initial = initial_retransmit
        self._next_send_id = 0
        self._in_flight: list[_InFlight] = []
        self._next_expected = 0
        self._held: dict[int, Message] = {}
        self._acks_owed: deque[int] = deque()

    # -- sending ----------------------------------------------------------------------------

    def queue(self, opcode: Opcode, payload: bytes) -> Message:
        """Number a new message and schedule it for sending."""
        message = Message(self._next_send_id, opcode, payload)
        self._next_send_id += 1
        self._in_flight.append(_InFlight(message, backoff=self._initial))
        return message

    def due(self, now: float) -> list[Message]:
        """Messages to put on the wire now: new ones and those whose retransmit time passed."""
        out = []
        for entry in self._in_flight[:SEND_WINDOW]:
            if entry.next_try is None or now >= entry.next_try:
                if entry.next_try is not None:
                    entry.backoff *= 2
                entry.next_try = now + entry.backoff
                out.append(entry.message)
        return out

    def acknowledge(self, message_ids: tuple[int, ...]) -> None:
        """The peer received these messages: stop retransmitting them."""
        acked = set(message_ids)
        self._in_flight = [e for e in self._in_flight if e.message.message_id not in acked]

    def timer(self) -> float | None:
        """When :meth:`due` next has something to resend, or None if nothing is in flight."""
        times = [e.next_try for e in self._in_flight[:SEND_WINDOW] if e.next_try is not None]
        return min(times, default=None)

    @property
    def all_acknowledged(self) -> bool:
        return not self._in_flight

    # -- receiving --------------------------------------------------------------------------

    def receive(self, message: Message) -> None:
        """Record a message from the peer: ACK it, and keep it for in-order delivery if new."""
        offset = message.message_id - self._next_expected
        if offset >= RECEIVE_WINDOW:
            return  # too far ahead to buffer; the peer will resend it
        if message.message_id not in self._acks_owed:
            self._acks_owed.append(message.message_id)
        if offset >= 0:
            self._held.setdefault(message.message_id, message)

    def deliver(self) -> list[Message]:
        """Messages now deliverable in order, each exactly once."""
        out = []
        while self._next_expected in self._held:
            out.append(self._held.pop(self._next_expected))
            self._next_expected += 1
        return out

    def take_acks(self, limit: int) -> tuple[int, ...]:
        """Up to ``limit`` ACKs owed to the peer, oldest first; they are sent only once."""
        count = min(limit, len(self._acks_owed))
        return tuple(self._acks_owed.popleft() for _ in range(count))

    @property
    def acks_owed(self) -> bool:
        return bool(self._acks_owed)
