"""The OpenVPN client handshake as a sans-IO machine: reset, TLS, key-method 2, PUSH_REQUEST.

Packets go in with :meth:`OpenVPNClient.receive`, packets come out of
:meth:`OpenVPNClient.packets_to_send`, progress comes out of :meth:`OpenVPNClient.next_event`, and
the caller wakes the machine at :meth:`OpenVPNClient.timer`. Time is a monotonic ``now`` passed in;
the Unix time needed by tls-auth/tls-crypt replay protection is derived from the one reading given
at construction.

Packets that fail to parse or authenticate are dropped and counted, never raised: on UDP anyone
can send them, and OpenVPN itself ignores them too.
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

from vpnwatch.protocols.openvpn import keymethod
from vpnwatch.protocols.openvpn.packets import (
    HEADER_SIZE,
    SESSION_ID_SIZE,
    TLS_MTU,
    AuthenticationError,
    ControlPacket,
    Opcode,
    PacketError,
    body_overhead,
)
from vpnwatch.protocols.openvpn.reliable import Message, ReliableLayer
from vpnwatch.protocols.openvpn.tls import CertificateError, PeerRequirements, TlsChannel, TlsError
from vpnwatch.protocols.openvpn.wrappers import Wrapper

#: ACKs piggybacked on one outgoing message; payloads are sized so that this many always fit.
PIGGYBACK_ACKS = 4
#: Resend PUSH_REQUEST this often until the server answers (it defers while auth is pending).
PUSH_REQUEST_INTERVAL = 1.0
_EXIT = b"EXIT\x00"


# -- events -----------------------------------------------------------------------------------


class Event:
    """Something the handshake reached or found; the driver turns events into stages."""


@dataclass(frozen=True, slots=True)
class ResetAcknowledged(Event):
    """The server answered our hard reset with its own: it accepted our wrapping key (if any)."""


@dataclass(frozen=True, slots=True)
class TlsEstablished(Event):
    """TLS completed and the server's certificate passed every check."""

    version: str


@dataclass(frozen=True, slots=True)
class PushReplyReceived(Event):
    """The server accepted us and sent its pushed options: the handshake is complete."""


@dataclass(frozen=True, slots=True)
class HandshakeFailed(Event):
    """The handshake cannot complete; ``reason`` says which part failed."""

    reason: FailureReason
    detail: str


class FailureReason(Enum):
    CERTIFICATE = auto()  # the server's certificate failed verification
    TLS = auto()  # a TLS alert or other TLS failure
    AUTH = auto()  # AUTH_FAILED
    PROTOCOL = auto()  # the server's plaintext messages were malformed


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientConfig:
    """Everything the handshake needs that comes from the target's configuration."""

    tls_context: ssl.SSLContext
    peer_requirements: PeerRequirements
    options: str
    peer_info: str
    credentials: keymethod.Credentials | None = None
    tls_crypt_v2: bool = False
    initial_retransmit: float = 2.0


class _Phase(Enum):
    RESET = auto()
    TLS = auto()
    KEY_EXCHANGE = auto()
    PUSH = auto()
    DONE = auto()
    FAILED = auto()


@dataclass
class DropCounts:
    """Packets ignored, by why: a diagnosis for a handshake that then timed out."""

    malformed: int = 0
    unauthenticated: int = 0
    foreign: int = 0  # valid packets for another session

    def total(self) -> int:
        return self.malformed + self.unauthenticated + self.foreign


class OpenVPNClient:
    """One client handshake with one server over one transport."""

    def __init__(
        self,
        config: ClientConfig,
        wrapper: Wrapper,
        *,
        now: float,
        unix_time: float,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._config = config
        self._wrapper = wrapper
        self._epoch = unix_time - now
        self._random = random_bytes
        self.session_id = random_bytes(SESSION_ID_SIZE)
        self.remote_session_id: bytes | None = None
        self._reliable = ReliableLayer(initial_retransmit=config.initial_retransmit)
        self._tls = TlsChannel(config.tls_context, config.peer_requirements)
        self._phase = _Phase.RESET
        self._events: deque[Event] = deque()
        self._plaintext = b""  # decrypted bytes not yet parsed
        self._push_due: float | None = None
        self.dropped = DropCounts()
        reset = (
            Opcode.CONTROL_HARD_RESET_CLIENT_V3
            if config.tls_crypt_v2
            else Opcode.CONTROL_HARD_RESET_CLIENT_V2
        )
        self._reliable.queue(reset, b"")

    # -- outputs ----------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def timer(self) -> float | None:
        """When to call :meth:`packets_to_send` again even if nothing arrives."""
        times = [t for t in (self._reliable.timer(), self._push_due) if t is not None]
        return min(times, default=None)

    def packets_to_send(self, now: float) -> list[bytes]:
        """Wire packets due now: new and retransmitted messages, then bare ACKs still owed."""
        if self._push_due is not None and now >= self._push_due:
            self._send_plaintext(keymethod.PUSH_REQUEST)
            self._push_due = now + PUSH_REQUEST_INTERVAL
        net_time = int(self._epoch + now)
        packets = [
            self._wrapper.wrap(self._control_packet(message), net_time)
            for message in self._reliable.due(now)
        ]
        while self._reliable.acks_owed and self.remote_session_id is not None:
            acks = self._reliable.take_acks(PIGGYBACK_ACKS)
            ack = ControlPacket(Opcode.ACK_V1, self.session_id, acks, self.remote_session_id)
            packets.append(self._wrapper.wrap(ack, net_time))
        return packets

    def goodbye(self) -> None:
        """Tell a server that accepted us that we are leaving, so it frees our session now."""
        if self._phase is _Phase.DONE:
            self._send_plaintext(_EXIT)

    # -- input ------------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """One packet from the server (a datagram, or one TCP frame)."""
        if self.finished:
            return
        try:
            packet = self._wrapper.unwrap(data)
        except AuthenticationError:
            self.dropped.unauthenticated += 1
            return
        except PacketError:
            self.dropped.malformed += 1
            return
        if not self._belongs_to_session(packet):
            self.dropped.foreign += 1
            return
        self._reliable.acknowledge(packet.acks)
        if packet.message_id is not None:
            self._reliable.receive(Message(packet.message_id, packet.opcode, packet.payload))
        for message in self._reliable.deliver():
            self._handle(message, now)
            if self.finished:
                return

    @property
    def finished(self) -> bool:
        """True once the handshake succeeded or failed: later packets are ignored."""
        return self._phase in (_Phase.DONE, _Phase.FAILED)

    # -- internals --------------------------------------------------------------------------

    def _belongs_to_session(self, packet: ControlPacket) -> bool:
        if packet.remote_session_id is not None and packet.remote_session_id != self.session_id:
            return False
        if self.remote_session_id is None:
            # Only the server's reset may introduce its session id.
            if packet.opcode is not Opcode.CONTROL_HARD_RESET_SERVER_V2:
                return False
            self.remote_session_id = packet.session_id
        return packet.session_id == self.remote_session_id

    def _control_packet(self, message: Message) -> ControlPacket:
        acks = self._reliable.take_acks(PIGGYBACK_ACKS) if self.remote_session_id else ()
        return ControlPacket(
            message.opcode,
            self.session_id,
            acks,
            self.remote_session_id if acks else None,
            message.message_id,
            message.payload,
        )

    @property
    def _max_payload(self) -> int:
        overhead = HEADER_SIZE + self._wrapper.overhead + body_overhead(PIGGYBACK_ACKS)
        return TLS_MTU - overhead

    def _queue_tls_records(self) -> None:
        records = self._tls.data_to_send()
        size = self._max_payload
        for start in range(0, len(records), size):
            self._reliable.queue(Opcode.CONTROL_V1, records[start : start + size])

    def _send_plaintext(self, plaintext: bytes) -> None:
        self._tls.write(plaintext)
        self._queue_tls_records()

    def _fail(self, reason: FailureReason, detail: str) -> None:
        self._phase = _Phase.FAILED
        self._push_due = None
        self._events.append(HandshakeFailed(reason, detail))

    def _handle(self, message: Message, now: float) -> None:
        if message.opcode is Opcode.CONTROL_HARD_RESET_SERVER_V2:
            if self._phase is _Phase.RESET:
                self._phase = _Phase.TLS
                self._events.append(ResetAcknowledged())
                self._advance_tls(now)
            return
        if message.opcode is not Opcode.CONTROL_V1 or self._phase is _Phase.RESET:
            self.dropped.malformed += 1
            return
        self._tls.receive(message.payload)
        self._advance_tls(now)

    def _advance_tls(self, now: float) -> None:
        try:
            if self._phase is _Phase.TLS:
                established = self._tls.advance()
                self._queue_tls_records()
                if not established:
                    return
                self._events.append(TlsEstablished(self._tls.version))
                self._phase = _Phase.KEY_EXCHANGE
                self._send_plaintext(
                    keymethod.client_key_method(
                        self._random(keymethod.CLIENT_KEY_SOURCE_SIZE),
                        self._config.options,
                        self._config.credentials,
                        self._config.peer_info,
                    )
                )
            self._plaintext += self._tls.read()
            self._queue_tls_records()  # TLS 1.3 may answer post-handshake messages
        except CertificateError as exc:
            self._fail(FailureReason.CERTIFICATE, str(exc))
            return
        except TlsError as exc:
            self._fail(FailureReason.TLS, str(exc))
            return
        self._handle_plaintext(now)

    def _handle_plaintext(self, now: float) -> None:
        if self._phase is _Phase.KEY_EXCHANGE:
            try:
                parsed = keymethod.parse_server_key_method(self._plaintext)
            except keymethod.KeyMethodError as exc:
                self._fail(FailureReason.PROTOCOL, str(exc))
                return
            if parsed is None:
                return
            _, used = parsed
            self._plaintext = self._plaintext[used:]
            self._phase = _Phase.PUSH
            self._push_due = now
        if self._phase is not _Phase.PUSH:
            return
        commands, self._plaintext = keymethod.split_commands(self._plaintext)
        for command in commands:
            if command.startswith("PUSH_REPLY"):
                self._phase = _Phase.DONE
                self._push_due = None
                self._events.append(PushReplyReceived())
                return
            if command.startswith("AUTH_FAILED"):
                reason = command.partition(",")[2]
                detail = (
                    f"server sent AUTH_FAILED{': ' + keymethod.printable(reason) if reason else ''}"
                )
                self._fail(FailureReason.AUTH, detail)
                return
