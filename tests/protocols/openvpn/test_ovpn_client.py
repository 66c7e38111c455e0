"""The client machine against an in-memory server written here: no sockets, time moved by hand.

The server is the least that completes an OpenVPN handshake (reset, TLS, key-method 2, push), so
that the tests can tamper with any step; real servers are in tests/integration, and their bytes in
tests/vectors. It shares no code with the client: its packets, ACKs, reliability, TCP framing and
tls-auth/tls-crypt come from :mod:`tests.vectors.openvpn` (written from OpenVPN's wire format and
checked against the real server's packets) and from what this file adds, its TLS from Python's
``ssl`` module.
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vectors.openvpn import (
    P_ACK_V1,
    P_CONTROL_HARD_RESET_CLIENT_V2,
    P_CONTROL_HARD_RESET_CLIENT_V3,
    P_CONTROL_HARD_RESET_SERVER_V2,
    P_CONTROL_V1,
    Packet,
    Plain,
    TlsAuthWrap,
    TlsCryptWrap,
    Wrap,
    deframe,
    frame,
)
from vpnwatch.lab.openvpn import SERVER_NAME, Pki, generate_pki
from vpnwatch.protocols.machine import CertificateVerified, Completed, Event, Failed, StageCompleted
from vpnwatch.protocols.openvpn.client import (
    PUSH_REQUEST_INTERVAL,
    ClientConfig,
    OpenVPNClient,
)
from vpnwatch.protocols.openvpn.keymethod import Credentials, client_key_method, peer_info
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.openvpn.wrappers import (
    STATIC_KEY_SIZE,
    KeyDirection,
    NoWrap,
    TlsAuth,
    WrapKind,
    Wrapper,
    make_wrapper,
)
from vpnwatch.result import Failure

SERVER_SID = b"S" * 8
#: OpenVPN's default --tls-mtu: no control packet may be larger.
TLS_MTU = 1250
#: OpenVPN keeps at most this many ACKs in one packet (RELIABLE_ACK_SIZE).
MAX_ACKS = 8
#: The server resends an unacknowledged message after this long (OpenVPN's --tls-timeout).
RESEND_AFTER = 2.0
KEY_METHOD_2_CLIENT_SIZE = 5 + 112  # zero, method, pre-master, random1, random2


@pytest.fixture(scope="module")
def pki() -> Pki:
    return generate_pki()


@dataclass
class _Outgoing:
    opcode: int
    payload: bytes
    sent_at: float | None = None


class FakeServer:
    """Answers a client's reset, completes TLS, reads key-method 2 and answers PUSH_REQUEST.

    Its reliability layer is the specification's, written out here: every client message is
    ACKed (a duplicate too: its ACK was lost), messages are handed up in order exactly once, and
    its own messages are numbered from 0 and sent again until the client ACKs them.
    """

    def __init__(
        self,
        pki: Pki,
        tmp: Path,
        answer: bytes | None = b"PUSH_REPLY,ping 10,peer-id 0,cipher AES-256-GCM",
        wrap: Wrap | None = None,
    ) -> None:
        (tmp / "s.crt").write_text(pki.server_cert)
        (tmp / "s.key").write_text(pki.server_key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "s.crt", tmp / "s.key")
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=True)
        self._wrap: Wrap = wrap or Plain()
        self._answer = answer
        self._plaintext = b""
        self._next_expected = 0
        self._held: dict[int, Packet] = {}
        self._acks_owed: list[int] = []
        self._outgoing: dict[int, _Outgoing] = {}
        self._next_id = 0
        self.client_sid: bytes | None = None
        self.received: list[Packet] = []
        self.key_method: bytes | None = None
        self.push_requests = 0
        self.exit_received = False

    def receive(self, wire: bytes) -> None:
        packet = self._wrap.open(wire)
        self.received.append(packet)
        assert self.client_sid in (None, packet.session_id), "the client changed its session id"
        self.client_sid = packet.session_id
        if packet.acks:
            assert packet.remote_session_id == SERVER_SID, "ACKs for another session"
        for acked in packet.acks:
            self._outgoing.pop(acked, None)
        if packet.message_id is None:
            return
        if packet.message_id not in self._acks_owed:
            self._acks_owed.append(packet.message_id)
        if packet.message_id >= self._next_expected:
            self._held.setdefault(packet.message_id, packet)
        while self._next_expected in self._held:
            self._deliver(self._held.pop(self._next_expected))
            self._next_expected += 1

    def _queue(self, opcode: int, payload: bytes) -> None:
        self._outgoing[self._next_id] = _Outgoing(opcode, payload)
        self._next_id += 1

    def _deliver(self, message: Packet) -> None:
        if message.opcode in (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3):
            self._queue(P_CONTROL_HARD_RESET_SERVER_V2, b"")
            return
        assert message.opcode == P_CONTROL_V1, message
        self._in.write(message.payload)
        try:
            self._tls.do_handshake()
            self._plaintext += self._tls.read(65536)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            return  # the client rejected us: a real server gives up silently too
        self._flush_tls()
        self._handle_plaintext()

    def _handle_plaintext(self) -> None:
        if self.key_method is None and len(self._plaintext) > KEY_METHOD_2_CLIENT_SIZE:
            self.key_method, self._plaintext = self._plaintext, b""
            options = b"V4,dev-type tun\x00"
            reply = b"\x00\x00\x00\x00\x02" + b"r" * 64 + struct.pack("!H", len(options))
            self._tls.write(reply + options + b"\x00\x00" * 3)
        if b"PUSH_REQUEST\x00" in self._plaintext:
            self.push_requests += self._plaintext.count(b"PUSH_REQUEST\x00")
            self._plaintext = b""
            if self._answer is not None:  # None: authentication stays pending
                self._tls.write(self._answer + b"\x00")
        if b"EXIT\x00" in self._plaintext:
            self.exit_received = True
        self._flush_tls()

    def _flush_tls(self) -> None:
        data = self._out.read()
        for start in range(0, len(data), 1000):
            self._queue(P_CONTROL_V1, data[start : start + 1000])

    def _take_acks(self) -> tuple[int, ...]:
        acks = tuple(self._acks_owed[:MAX_ACKS])
        del self._acks_owed[:MAX_ACKS]
        return acks

    def packets(self, now: float) -> list[bytes]:
        """New messages, messages unACKed for :data:`RESEND_AFTER`, then bare ACKs still owed."""
        assert self.client_sid is not None
        out = []
        for message_id, message in sorted(self._outgoing.items()):
            if message.sent_at is not None and now - message.sent_at < RESEND_AFTER:
                continue
            message.sent_at = now
            acks = self._take_acks()
            remote = self.client_sid if acks else None
            packet = Packet(message.opcode, SERVER_SID, acks, remote, message_id, message.payload)
            out.append(self._wrap.seal(packet, int(UNIX_TIME)))
        while self._acks_owed:
            ack = Packet(P_ACK_V1, SERVER_SID, self._take_acks(), self.client_sid)
            out.append(self._wrap.seal(ack, int(UNIX_TIME)))
        return out


UNIX_TIME = 1_700_000_000.0


def make_client(
    pki: Pki,
    *,
    ca: str | None = None,
    tcp: bool = False,
    wrapper: Wrapper | None = None,
    tls_crypt_v2: bool = False,
    start: float | None = 0.0,
    **requirements: Any,
) -> OpenVPNClient:
    """A client with counted randomness, started at ``start`` (None: not started)."""
    config = ClientConfig(
        tls_context=build_context(ca or pki.ca),
        peer_requirements=PeerRequirements(**requirements),
        options="V4,dev-type tun,tls-client",
        peer_info=peer_info(version="2.6.0", ciphers="AES-256-GCM", monitor="test"),
        credentials=Credentials("probe", "s3cret"),
        tcp=tcp,
        tls_crypt_v2=tls_crypt_v2,
    )
    counter = iter(range(1, 1 << 30))
    client = OpenVPNClient(
        config,
        wrapper or NoWrap(),
        unix_time=UNIX_TIME,
        random_bytes=lambda n: bytes([next(counter) % 256]) * n,
    )
    if start is not None:
        client.start(start)
    return client


def run(
    client: OpenVPNClient, server: FakeServer, rounds: int = 20, step: float = 0.01
) -> list[Event]:
    """Exchange packets as the driver does: send what is due, then drain events, then receive."""
    events: list[Event] = []
    now = 0.0
    for _ in range(rounds):
        for wire in client.data_to_send(now):
            server.receive(wire)
        while (event := client.next_event()) is not None:
            events.append(event)
        if client.finished:
            break
        for wire in server.packets(now):
            client.receive(wire, now)
        now += step
        if (wake := client.timer()) is not None and now >= wake:
            client.handle_timer(now)
    return events


def stages(pki: Pki) -> list[Event]:
    """What a handshake with the fake server reports, up to PUSH_REPLY: the certificate's
    expiry comes with the ``tls`` stage, read from the server's own certificate."""
    not_after = x509.load_pem_x509_certificate(pki.server_cert.encode()).not_valid_after_utc
    return [
        StageCompleted("reset"),
        CertificateVerified(not_after.timestamp()),
        StageCompleted("tls"),
        StageCompleted("auth"),
    ]


def test_full_handshake(pki: Pki, tmp_path: Path) -> None:
    server = FakeServer(pki, tmp_path)
    client = make_client(
        pki, remote_cert_tls_server=True, x509_name=SERVER_NAME, x509_name_type="name"
    )
    events = run(client, server)
    assert events[:4] == stages(pki)
    assert len(events) == 5 and isinstance(events[4], Completed)
    assert events[4].detail.startswith("PUSH_REPLY received over TLSv1.")
    assert server.key_method is not None
    assert b"probe\x00" in server.key_method and b"s3cret\x00" in server.key_method
    assert server.exit_received, "the EXIT goodbye goes out before Completed is drained"
    assert client.finished and client.timer() is None


WRAP_KEY = bytes(range(256))
#: A tls-crypt-v2 wrapped client key as the client sees it: opaque, ending in its own length.
WKC = b"w" * 62 + (64).to_bytes(2, "big")


@pytest.mark.parametrize(
    ("kind", "direction", "server_wrap"),
    [
        ("tls-auth", 1, lambda: TlsAuthWrap(WRAP_KEY, 0)),
        ("tls-auth", None, lambda: TlsAuthWrap(WRAP_KEY, None)),
        ("tls-crypt", None, lambda: TlsCryptWrap(WRAP_KEY, 0)),
        ("tls-crypt-v2", None, lambda: TlsCryptWrap(WRAP_KEY, 0)),
    ],
    ids=["tls-auth-direction-1", "tls-auth-bidirectional", "tls-crypt", "tls-crypt-v2"],
)
def test_full_handshake_through_each_wrapping(
    pki: Pki,
    tmp_path: Path,
    kind: WrapKind,
    direction: KeyDirection,
    server_wrap: Callable[[], Wrap],
) -> None:
    v2 = kind == "tls-crypt-v2"
    wrapper = make_wrapper(kind, WRAP_KEY + WKC if v2 else WRAP_KEY, direction=direction)
    server = FakeServer(pki, tmp_path, wrap=server_wrap())
    events = run(make_client(pki, wrapper=wrapper, tls_crypt_v2=v2), server)
    assert events[:4] == stages(pki) and isinstance(events[4], Completed), events
    first, *rest = server.received
    assert first.opcode == (
        P_CONTROL_HARD_RESET_CLIENT_V3 if v2 else P_CONTROL_HARD_RESET_CLIENT_V2
    )
    assert first.wkc == (WKC if v2 else b"") and all(p.wkc == b"" for p in rest)
    # Packet ids count up from 1 with no gap or repeat, as the server's replay window demands.
    assert [p.stamp for p in server.received] == [
        (n, int(UNIX_TIME)) for n in range(1, len(server.received) + 1)
    ]
    assert server.exit_received


class StreamServer:
    """The fake server behind a TCP stream: frames whole, and hands bytes over in small reads."""

    def __init__(self, server: FakeServer, read_size: int) -> None:
        self.server = server
        self._stream = b""
        self._read_size = read_size

    def receive(self, chunk: bytes) -> None:
        packets, self._stream = deframe(self._stream + chunk)
        for packet in packets:
            self.server.receive(packet)

    def reads(self, now: float) -> list[bytes]:
        stream = b"".join(frame(packet) for packet in self.server.packets(now))
        return [stream[i : i + self._read_size] for i in range(0, len(stream), self._read_size)]


@pytest.mark.parametrize("read_size", [1, 7, 65536])
def test_full_handshake_over_tcp_whatever_the_read_sizes(
    pki: Pki, tmp_path: Path, read_size: int
) -> None:
    stream = StreamServer(FakeServer(pki, tmp_path), read_size)
    client = make_client(pki, tcp=True)
    events: list[Event] = []
    for _ in range(20):
        for chunk in client.data_to_send(0.0):
            assert int.from_bytes(chunk[:2], "big") == len(chunk) - 2  # one framed packet each
            stream.receive(chunk)
        while (event := client.next_event()) is not None:
            events.append(event)
        if client.finished:
            break
        for data in stream.reads(0.0):
            client.receive(data, 0.0)
    assert events[:4] == stages(pki) and isinstance(events[4], Completed), events
    assert stream.server.exit_received


def test_tcp_close_is_eof_and_ends_the_machine(pki: Pki) -> None:
    client = make_client(pki, tcp=True)
    client.data_to_send(0.0)
    client.receive(b"\x00\x40\x38", 0.1)  # a frame cut short, then the close
    assert client.next_event() is None
    client.receive(b"", 0.2)
    assert client.next_event() == Failed(Failure.EOF, "the server closed the connection")
    assert client.finished and client.timer() is None
    client.receive(b"", 0.3)
    assert client.next_event() is None


@pytest.mark.parametrize("frame", [b"\x00\x00", b"\xff\xff" + b"x" * 100])
def test_tcp_frame_no_packet_fits_is_a_protocol_failure(pki: Pki, frame: bytes) -> None:
    client = make_client(pki, tcp=True)
    client.receive(frame, 0.1)
    event = client.next_event()
    assert isinstance(event, Failed) and event.failure is Failure.PROTOCOL, event
    assert "TCP frame" in event.detail


def test_malformed_packet_in_a_good_tcp_frame_is_dropped_not_fatal(pki: Pki) -> None:
    client = make_client(pki, tcp=True)
    client.receive(frame(b"\x40" + b"\x01" * 8 + b"\x09"), 0.1)
    assert client.next_event() is None and not client.finished
    assert client.dropped.malformed == 1


def test_first_packet_after_server_reset_acks_it_with_its_session_id(
    pki: Pki, tmp_path: Path
) -> None:
    server = FakeServer(pki, tmp_path)
    run(make_client(pki), server, rounds=2)
    reset, hello = server.received[0], server.received[1]
    assert reset.opcode == P_CONTROL_HARD_RESET_CLIENT_V2 and reset.message_id == 0
    assert hello.opcode == P_CONTROL_V1 and hello.message_id == 1
    assert hello.acks == (0,) and hello.remote_session_id == SERVER_SID


def test_packets_stay_within_tls_mtu(pki: Pki, tmp_path: Path) -> None:
    client = make_client(pki)
    server = FakeServer(pki, tmp_path)
    sizes = []
    now = 0.0
    for _ in range(20):
        for wire in client.data_to_send(now):
            sizes.append(len(wire))
            server.receive(wire)
        for wire in server.packets(now):
            client.receive(wire, now)
        now += 0.01
    assert max(sizes) <= TLS_MTU


def test_auth_failed(pki: Pki, tmp_path: Path) -> None:
    events = run(make_client(pki), FakeServer(pki, tmp_path, answer=b"AUTH_FAILED,bad password"))
    assert events[:3] == stages(pki)[:3]
    failure = events[-1]
    assert isinstance(failure, Failed) and failure.failure is Failure.AUTH
    assert "bad password" in failure.detail


def test_a_push_the_real_client_refuses_fails_at_auth(pki: Pki, tmp_path: Path) -> None:
    answer = b"PUSH_REPLY,peer-id 0,cipher AES-256-GCM,compress lz4-v2"
    server = FakeServer(pki, tmp_path, answer=answer)
    client = make_client(pki)
    events = run(client, server)
    assert events[:3] == stages(pki)[:3]
    failure = events[-1]
    assert isinstance(failure, Failed) and failure.failure is Failure.PROTOCOL
    assert "compress lz4-v2" in failure.detail and "allow-compression" in failure.detail
    assert client.push_reply is None and server.exit_received


def test_the_accepted_push_is_kept_for_the_data_channel(pki: Pki, tmp_path: Path) -> None:
    client = make_client(pki)
    run(client, FakeServer(pki, tmp_path))
    assert client.push_reply is not None
    assert (client.push_reply.peer_id, client.push_reply.cipher) == (0, "AES-256-GCM")


def test_push_request_is_repeated_while_the_server_defers(pki: Pki, tmp_path: Path) -> None:
    server = FakeServer(pki, tmp_path, answer=None)
    client = make_client(pki)
    events = run(client, server, rounds=int(3.5 * PUSH_REQUEST_INTERVAL / 0.05), step=0.05)
    assert events == stages(pki)[:3] and not client.finished
    assert server.push_requests == 4  # at once, then every interval


def test_wrong_ca_is_a_certificate_failure(pki: Pki, tmp_path: Path) -> None:
    events = run(make_client(pki, ca=generate_pki().ca), FakeServer(pki, tmp_path))
    assert events[0] == StageCompleted("reset")
    failure = events[-1]
    assert isinstance(failure, Failed) and failure.failure is Failure.TLS_CERT


@pytest.mark.parametrize(
    "requirements",
    [
        {"x509_name": "someone-else", "x509_name_type": "name"},
        {"x509_name": "vpnwatch-lab-serverX", "x509_name_type": "name-prefix"},
        {"x509_name": "CN=other", "x509_name_type": "subject"},
    ],
)
def test_name_mismatch_is_a_certificate_failure(
    pki: Pki, tmp_path: Path, requirements: dict[str, Any]
) -> None:
    events = run(make_client(pki, **requirements), FakeServer(pki, tmp_path))
    failure = events[-1]
    assert isinstance(failure, Failed) and failure.failure is Failure.TLS_CERT


def test_subject_form_matches_openvpn_spelling(pki: Pki, tmp_path: Path) -> None:
    client = make_client(pki, x509_name=f"CN={SERVER_NAME}", x509_name_type="subject")
    assert isinstance(run(client, FakeServer(pki, tmp_path))[-1], Completed)


def test_nothing_is_sent_before_start(pki: Pki) -> None:
    client = make_client(pki, start=None)
    assert client.data_to_send(0.0) == [] and client.timer() is None
    client.start(0.0)
    (reset,) = client.data_to_send(0.0)
    assert Plain().open(reset) == Packet(
        P_CONTROL_HARD_RESET_CLIENT_V2, client.session_id, message_id=0
    )
    assert client.session_id == b"\x01" * 8  # the injected randomness, drawn first


def test_reset_is_retransmitted_on_the_timer(pki: Pki) -> None:
    """As OpenVPN's reliability layer: 2 s after sending, then doubling (resent at 2, 6, 14 s)."""
    client = make_client(pki)
    assert len(client.data_to_send(0.0)) == 1
    assert client.timer() == 2.0
    assert client.data_to_send(1.0) == []
    client.handle_timer(2.0)
    assert len(client.data_to_send(2.0)) == 1
    assert client.timer() == 6.0
    client.handle_timer(6.0)
    assert len(client.data_to_send(6.0)) == 1
    assert client.timer() == 14.0


def test_wrapped_packets_carry_unix_time_from_construction_and_start(pki: Pki) -> None:
    """tls-auth's packet id time is the Unix time given at construction, paired with start's now."""
    client = make_client(pki, wrapper=TlsAuth(bytes(STATIC_KEY_SIZE)), start=100.0)
    reader = TlsAuthWrap(bytes(STATIC_KEY_SIZE), None)
    stamps = []
    for now in (100.0, 102.5):  # the reset, then its retransmission
        (wire,) = client.data_to_send(now)
        stamps.append(reader.open(wire).stamp)
    assert stamps == [(1, int(UNIX_TIME)), (2, int(UNIX_TIME) + 2)]


def test_timed_out_blames_what_was_dropped(pki: Pki) -> None:
    client = make_client(pki)
    assert client.timed_out() == Failed(Failure.TIMEOUT, "no valid reply")
    client.receive(b"\x40" + b"\x01" * 8 + b"\x09", 0.1)
    failed = client.timed_out()
    assert failed.failure is Failure.PROTOCOL and "1 malformed" in failed.detail
    wrapped = make_client(pki, wrapper=TlsAuth(bytes(STATIC_KEY_SIZE)))
    impostor = TlsAuthWrap(b"\x01" * STATIC_KEY_SIZE, None)
    forged = Packet(P_CONTROL_HARD_RESET_SERVER_V2, SERVER_SID, message_id=0)
    wrapped.receive(impostor.seal(forged, int(UNIX_TIME)), 0.1)
    failed = wrapped.timed_out()
    assert failed.failure is Failure.AUTH and "tls-auth/tls-crypt" in failed.detail
    assert wrapped.next_event() is None and not wrapped.finished


def test_client_key_method_layout() -> None:
    message = client_key_method(b"k" * 112, "opts", None, "IV_VER=1\n")
    assert message == (
        b"\x00\x00\x00\x00\x02"
        + b"k" * 112
        + b"\x00\x05opts\x00"
        + b"\x00\x00" * 2
        + b"\x00\x0aIV_VER=1\n\x00"
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.binary(max_size=1500), max_size=5))
def test_garbage_from_the_network_never_raises(pki: Pki, garbage: list[bytes]) -> None:
    client = make_client(pki)
    client.data_to_send(0.0)
    reset = Plain().seal(
        Packet(P_CONTROL_HARD_RESET_SERVER_V2, SERVER_SID, (0,), client.session_id, 0)
    )
    for data in [
        *garbage,
        reset,
        *garbage,
        reset[:-1],
        b"\x20" + SERVER_SID + b"\x00" * 40,
    ]:
        client.receive(data, 0.1)
    client.data_to_send(0.2)
    assert client.dropped.total() >= 1
