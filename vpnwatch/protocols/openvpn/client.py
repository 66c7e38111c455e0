"""The OpenVPN client handshake as a machine on the shared contract: reset, TLS, key-method 2, push.

:class:`OpenVPNClient` follows :mod:`vpnwatch.protocols.machine`: the driver calls
:meth:`~OpenVPNClient.start`, hands it what arrives (a UDP datagram, or whatever bytes a TCP read
returned: over TCP the machine itself undoes OpenVPN's 2-byte length framing), sends what
:meth:`~OpenVPNClient.data_to_send` returns, and wakes it at :meth:`~OpenVPNClient.timer`. Time is
a monotonic ``now`` passed in; the Unix time that tls-auth/tls-crypt packet ids carry is derived
from the one reading given at construction. The session id and the key-method randomness come from
an injectable ``random_bytes``.

Packets that fail to parse or authenticate are dropped and counted, never raised: on UDP anyone
can send them, and OpenVPN itself ignores them too. They decide the failure only if time runs out
(:meth:`~OpenVPNClient.timed_out`).
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from vpnwatch.protocols.machine import Failed, MachineBase, StageCompleted
from vpnwatch.protocols.openvpn import keymethod
from vpnwatch.protocols.openvpn.datachannel import (
    DataChannel,
    UnsupportedCipher,
    is_data_packet,
    negotiated_channel,
    uses_tls_ekm,
)
from vpnwatch.protocols.openvpn.datakeys import (
    EXPORTER_LABEL,
    KEY_BLOCK_SIZE,
    KeySources,
    prf_key_block,
)
from vpnwatch.protocols.openvpn.openssl import export_keying_material
from vpnwatch.protocols.openvpn.packets import (
    HEADER_SIZE,
    SESSION_ID_SIZE,
    TLS_MTU,
    AuthenticationError,
    ControlPacket,
    Opcode,
    PacketError,
    TcpDeframer,
    body_overhead,
    frame_tcp,
)
from vpnwatch.protocols.openvpn.push import (
    PullPolicy,
    PushAssembler,
    PushError,
    PushRefused,
    PushReply,
    accept_push,
)
from vpnwatch.protocols.openvpn.reliable import INITIAL_RETRANSMIT, Message, ReliableLayer
from vpnwatch.protocols.openvpn.tls import PeerRequirements, check_peer_certificate
from vpnwatch.protocols.openvpn.wrappers import Wrapper
from vpnwatch.protocols.tls import TlsChannel, TlsError, tls_failure
from vpnwatch.result import Failure, LocalError, LocalReason

#: ACKs piggybacked on one outgoing message; payloads are sized so that this many always fit.
PIGGYBACK_ACKS = 4
#: Resend PUSH_REQUEST this often until the server answers (it defers while auth is pending).
PUSH_REQUEST_INTERVAL = 1.0
_EXIT = b"EXIT\x00"


@dataclass(frozen=True)
class ClientConfig:
    """Everything the handshake needs that comes from the target's configuration."""

    tls_context: ssl.SSLContext
    peer_requirements: PeerRequirements
    options: str
    peer_info: str
    credentials: keymethod.Credentials | None = None
    tls_crypt_v2: bool = False
    #: Over TCP, each packet travels behind its 16-bit length; over UDP, one per datagram.
    tcp: bool = False
    initial_retransmit: float = INITIAL_RETRANSMIT
    #: The file's TLS directives that narrow what the client offers (``tls-version-min 1.3``…),
    #: named when a server goes silent during TLS.
    tls_limits: str = ""
    #: How the client's file judges pushed options; the default accepts what 2.6 does by default.
    pull_policy: PullPolicy = field(default_factory=PullPolicy)
    #: Keep the session for a tunnel test: after PUSH_REPLY, key the data channel
    #: (:attr:`OpenVPNClient.data_channel`) instead of saying EXIT.
    tunnel: bool = False
    #: ``auth``: the digest of tls-auth and of CBC data-channel suites.
    digest: str = "SHA1"


class _Phase(Enum):
    RESET = auto()
    TLS = auto()
    KEY_EXCHANGE = auto()
    PUSH = auto()


@dataclass
class DropCounts:
    """Packets ignored, by why: a diagnosis for a handshake that then timed out."""

    malformed: int = 0
    unauthenticated: int = 0
    foreign: int = 0  # valid packets for another session

    def total(self) -> int:
        return self.malformed + self.unauthenticated + self.foreign


class OpenVPNClient(MachineBase):
    """One client handshake with one server over one transport.

    Stages: ``reset`` (the server answered our hard reset with its own, so it accepted our wrapping
    key, if any), ``tls`` (TLS completed and the server's certificate passed every check) and
    ``auth`` (PUSH_REPLY: the server accepted our certificate and credentials, and pushed options
    the 2.6 client with the same file accepts, :mod:`.push`; they stay in :attr:`push_reply`).
    Then the machine queues an EXIT, so that the server frees our session at once, and completes;
    unless a tunnel test follows (``ClientConfig.tunnel``): then it keys the data channel as the
    server keyed it (:attr:`data_channel`; TLS-EKM or key-method 2's PRF) and completes with the
    session open, and :mod:`.tunnel` carries echoes through it, using :meth:`after_handshake` and
    :meth:`say_goodbye` for what the control channel still has to do.

    Retransmission follows the real client's reliability layer (:mod:`.reliable`, OpenVPN's
    ``reliable_send``): an unacknowledged control message is sent again ``initial_retransmit``
    seconds after it went out (OpenVPN's ``--tls-timeout``, 2 s by default), and the wait doubles
    each time, so a lost message is resent at 2, 6 and 14 s. OpenVPN also resends early once three
    later messages were acknowledged; we do not, which costs time only, never a message. While the
    server defers its PUSH_REPLY (authentication pending), PUSH_REQUEST is repeated every
    :data:`PUSH_REQUEST_INTERVAL`, as the real client does.
    """

    stages: tuple[str, ...] = ("reset", "tls", "auth")

    def __init__(
        self,
        config: ClientConfig,
        wrapper: Wrapper,
        *,
        unix_time: float,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self._config = config
        self._wrapper = wrapper
        self._unix_time = unix_time
        self._epoch = unix_time  # the Unix time at now == 0; fixed by start()
        self._random = random_bytes
        self.session_id = random_bytes(SESSION_ID_SIZE)
        self.remote_session_id: bytes | None = None
        self._reliable = ReliableLayer(initial_retransmit=config.initial_retransmit)
        requirements = config.peer_requirements
        self._tls = TlsChannel(
            config.tls_context, check=lambda der: check_peer_certificate(der, requirements)
        )
        self._deframer = TcpDeframer() if config.tcp else None
        self._phase = _Phase.RESET
        self._plaintext = b""  # decrypted bytes not yet parsed
        self._push_due: float | None = None
        self._push = PushAssembler()
        self._server_cipher: str | None = None
        self.push_reply: PushReply | None = None
        self.dropped = DropCounts()
        self._client_source = b""  # key-method 2 randomness: the PRF needs both sides'
        self._server_source = b""
        self.data_channel: DataChannel | None = None

    # -- the machine contract ---------------------------------------------------------------

    def start(self, now: float) -> None:
        """Queue the hard reset; ``now`` pairs with the Unix time given at construction."""
        super().start(now)
        self._epoch = self._unix_time - now
        reset = (
            Opcode.CONTROL_HARD_RESET_CLIENT_V3
            if self._config.tls_crypt_v2
            else Opcode.CONTROL_HARD_RESET_CLIENT_V2
        )
        self._reliable.queue(reset, b"")

    def timer(self) -> float | None:
        """The next retransmission or PUSH_REQUEST, whichever is sooner."""
        if self.finished:
            return None
        times = [t for t in (self._reliable.timer(), self._push_due) if t is not None]
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        """Repeat PUSH_REQUEST if due; retransmissions go out with :meth:`data_to_send`."""
        if not self.finished and self._push_due is not None and now >= self._push_due:
            self._request_push(now)

    def data_to_send(self, now: float) -> list[bytes]:
        """Packets due now (new and retransmitted messages, then bare ACKs still owed).

        Over TCP each one is framed with its length, ready to be written in order.
        """
        net_time = int(self._epoch + now)
        packets = [
            self._wrapper.wrap(self._control_packet(message), net_time)
            for message in self._reliable.due(now)
        ]
        while self._reliable.acks_owed and self.remote_session_id is not None:
            acks = self._reliable.take_acks(PIGGYBACK_ACKS)
            ack = ControlPacket(Opcode.ACK_V1, self.session_id, acks, self.remote_session_id)
            packets.append(self._wrapper.wrap(ack, net_time))
        if self._deframer is not None:
            return [frame_tcp(packet) for packet in packets]
        return packets

    def receive(self, data: bytes, now: float) -> None:
        """A datagram, or the next bytes of the TCP stream (``b""``: the server closed it)."""
        if self.finished:
            return
        if self._deframer is None:
            self._receive_packet(data, now)
            return
        if not data:
            self._fail(Failure.EOF, f"the server closed the connection{self._silence()}")
            return
        try:
            packets = self._deframer.feed(data)
        except PacketError as exc:  # the stream cannot be resynchronised after a bad length
            self._fail(Failure.PROTOCOL, str(exc))
            return
        for packet in packets:
            self._receive_packet(packet, now)
            if self.finished:
                return

    @property
    def key_sources(self) -> KeySources | None:
        """The randomness both sides sent in key-method 2 (the PRF's input), once exchanged."""
        if not self._server_source:
            return None
        return KeySources.split(self._client_source, self._server_source)

    def timed_out(self) -> Failed:
        """Classify a handshake that ran out of time by what was dropped on the way."""
        drops = self.dropped
        if drops.unauthenticated:
            return Failed(
                Failure.AUTH,
                f"{drops.unauthenticated} replies failed tls-auth/tls-crypt authentication "
                "(wrong key or key-direction?), no valid one",
            )
        if drops.malformed:
            return Failed(Failure.PROTOCOL, f"{drops.malformed} malformed replies, no valid one")
        return Failed(Failure.TIMEOUT, f"no valid reply{self._silence()}")

    def _silence(self) -> str:
        """What a server that went quiet at this point is known to be refusing.

        An OpenVPN server that rejects a TLS handshake, a client certificate or a pending
        authentication drops the session without a word (the real client waits out its
        hand-window too), so the phase is the only clue a person gets.
        """
        if self._phase is _Phase.TLS:
            limits = self._config.tls_limits
            return (
                " to our TLS handshake: the server drops what it refuses (a TLS version, cipher "
                "or group"
                + (f" outside this file's {limits}" if limits else "")
                + ", or our client certificate)"
            )
        if self._phase is _Phase.KEY_EXCHANGE:
            return (
                " after TLS: the server dropped us, as it does when it refuses our client "
                "certificate (another CA, a chain missing from <extra-certs>, revoked)"
            )
        if self._phase is _Phase.PUSH:
            return " to PUSH_REQUEST: the server's authentication of us never completed"
        return ""

    # -- internals --------------------------------------------------------------------------

    def _receive_packet(self, data: bytes, now: float) -> None:
        for message in self._deliverable(data):
            self._handle(message, now)
            if self.finished:
                return

    def _deliverable(self, data: bytes) -> list[Message]:
        """The control messages the packet ``data`` makes deliverable, in order, once it is
        unwrapped, found to belong to this session and its ACKs taken; none when it is dropped
        (and counted as such)."""
        try:
            packet = self._wrapper.unwrap(data)
        except AuthenticationError:
            self.dropped.unauthenticated += 1
            return []
        except PacketError:
            self.dropped.malformed += 1
            return []
        if not self._belongs_to_session(packet):
            self.dropped.foreign += 1
            return []
        self._reliable.acknowledge(packet.acks)
        if packet.message_id is not None:
            self._reliable.receive(Message(packet.message_id, packet.opcode, packet.payload))
        return self._reliable.deliver()

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

    def _request_push(self, now: float) -> None:
        self._send_plaintext(keymethod.PUSH_REQUEST)
        self._push_due = now + PUSH_REQUEST_INTERVAL

    def _handle(self, message: Message, now: float) -> None:
        if message.opcode is Opcode.CONTROL_HARD_RESET_SERVER_V2:
            if self._phase is _Phase.RESET:
                self._phase = _Phase.TLS
                self._emit(StageCompleted("reset"))
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
                self._emit(self._tls.certificate_verified())
                self._emit(StageCompleted("tls"))
                self._phase = _Phase.KEY_EXCHANGE
                self._client_source = self._random(keymethod.CLIENT_KEY_SOURCE_SIZE)
                self._send_plaintext(
                    keymethod.client_key_method(
                        self._client_source,
                        self._config.options,
                        self._config.credentials,
                        self._config.peer_info,
                    )
                )
            self._plaintext += self._tls.read()
            self._queue_tls_records()  # TLS 1.3 may answer post-handshake messages
        except TlsError as exc:
            self._fail(tls_failure(exc), str(exc))
            return
        self._handle_plaintext(now)

    def _handle_plaintext(self, now: float) -> None:
        if self._phase is _Phase.KEY_EXCHANGE:
            try:
                parsed = keymethod.parse_server_key_method(self._plaintext)
            except keymethod.KeyMethodError as exc:
                self._fail(Failure.PROTOCOL, str(exc))
                return
            if parsed is None:
                return
            options, used = parsed
            self._server_cipher = keymethod.option_value(options, "cipher")
            self._server_source = keymethod.server_key_source(self._plaintext)
            self._plaintext = self._plaintext[used:]
            self._phase = _Phase.PUSH
            self._request_push(now)
        if self._phase is not _Phase.PUSH:
            return
        commands, self._plaintext = keymethod.split_commands(self._plaintext)
        for command in commands:
            if command.startswith("PUSH_REPLY"):
                self._handle_push_reply(command)
                if self.finished:
                    return
                continue
            if command.startswith("AUTH_FAILED"):
                reason = command.partition(",")[2]
                detail = (
                    f"server sent AUTH_FAILED{': ' + keymethod.printable(reason) if reason else ''}"
                )
                self._fail(Failure.AUTH, detail)
                return

    def _handle_push_reply(self, command: str) -> None:
        try:
            lines = self._push.add(command)
            if lines is None:
                return  # more parts follow (push-continuation 2)
            self.push_reply = accept_push(lines, self._config.pull_policy, self._server_cipher)
        except PushRefused as exc:
            self.say_goodbye()  # the server may free our session all the same
            self._fail(Failure.PROTOCOL, f"the 2.6 client would refuse the push: {exc}")
            return
        except PushError as exc:
            self._fail(Failure.PROTOCOL, f"malformed PUSH_REPLY: {exc}")
            return
        self._push_due = None
        if self._config.tunnel:
            try:
                self.data_channel = self._key_data_channel(self.push_reply)
            except UnsupportedCipher as exc:
                self._fail(Failure.PROTOCOL, f"the tunnel cannot be tested: {exc}")
                return
        self._emit(StageCompleted("auth"))
        detail = f"PUSH_REPLY received over {self._tls.version}"
        if self.data_channel is not None:
            self._complete(f"{detail}; data channel {self.data_channel.suite.name}")
        else:
            self._finish(detail)

    def _key_data_channel(self, reply: PushReply) -> DataChannel:
        """The data channel as the server keyed it (see :mod:`.datakeys`)."""
        if uses_tls_ekm(reply):
            try:
                block = export_keying_material(self._tls.connection, EXPORTER_LABEL, KEY_BLOCK_SIZE)
            except ssl.SSLError as exc:
                raise LocalError(LocalReason.INTERNAL, f"TLS-EKM: {exc}") from None
        else:
            sources = self.key_sources
            assert sources is not None and self.remote_session_id is not None  # came long before
            block = prf_key_block(sources, self.session_id, self.remote_session_id)
        cipher = reply.cipher or self._server_cipher or self._config.pull_policy.fallback_cipher
        if cipher is None:  # accept_push refuses such a reply before this
            raise UnsupportedCipher("no data-channel cipher was negotiated")
        return negotiated_channel(
            reply, cipher, self._config.digest, block, random_bytes=self._random
        )

    # -- after the handshake: what the data plane needs of the control channel --------------

    def after_handshake(self, data: bytes) -> list[bytes]:
        """The data-channel packets in ``data`` (a datagram, or more of the TCP stream) that
        arrived after the handshake completed with the session kept.

        Control packets among them are acknowledged (the server resends them until they are) and
        their TLS records read; whatever is malformed or foreign is dropped and counted.
        """
        if self._deframer is None:
            packets = [data] if data else []
        else:
            try:
                packets = self._deframer.feed(data)
            except PacketError:  # the stream is lost; the tunnel test will see nothing more
                self.dropped.malformed += 1
                return []
        found = []
        for packet in packets:
            if is_data_packet(packet):
                found.append(packet)
            else:
                self._late_control_packet(packet)
        return found

    def _late_control_packet(self, data: bytes) -> None:
        for message in self._deliverable(data):
            if message.opcode is Opcode.CONTROL_V1:
                self._tls.receive(message.payload)
        with contextlib.suppress(TlsError):
            self._tls.read()  # nothing the server says now changes the test (a late RESTART…)

    def say_goodbye(self) -> None:
        """Queue EXIT (it goes out with :meth:`data_to_send`): the server frees the session."""
        self._send_plaintext(_EXIT)

    def _finish(self, detail: str) -> None:
        self.say_goodbye()  # goes out before the driver sees Completed
        self._complete(detail)
