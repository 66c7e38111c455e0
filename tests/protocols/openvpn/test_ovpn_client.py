"""The client machine against an in-memory server written here: no sockets, time moved by hand.

The server is the least that completes an OpenVPN handshake (reset, TLS, key-method 2, push), so
that the tests can tamper with any step; real servers are in tests/integration.
"""

from __future__ import annotations

import ssl
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpnwatch.lab.openvpn import SERVER_NAME, Pki, generate_pki
from vpnwatch.protocols.openvpn.client import (
    ClientConfig,
    FailureReason,
    HandshakeFailed,
    OpenVPNClient,
    PushReplyReceived,
    ResetAcknowledged,
    TlsEstablished,
)
from vpnwatch.protocols.openvpn.keymethod import Credentials, client_key_method, peer_info
from vpnwatch.protocols.openvpn.packets import TLS_MTU, ControlPacket, Opcode, decode
from vpnwatch.protocols.openvpn.reliable import Message, ReliableLayer
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.openvpn.wrappers import NoWrap

SERVER_SID = b"S" * 8


@pytest.fixture(scope="module")
def pki() -> Pki:
    return generate_pki()


class FakeServer:
    """Answers a client's reset, completes TLS, reads key-method 2 and answers PUSH_REQUEST."""

    def __init__(self, pki: Pki, tmp: Path, answer: bytes = b"PUSH_REPLY,ping 10") -> None:
        (tmp / "s.crt").write_text(pki.server_cert)
        (tmp / "s.key").write_text(pki.server_key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "s.crt", tmp / "s.key")
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=True)
        self._reliable = ReliableLayer()
        self._answer = answer
        self._plaintext = b""
        self.client_sid: bytes | None = None
        self.received: list[ControlPacket] = []
        self.key_method: bytes | None = None

    def receive(self, wire: bytes) -> None:
        packet = decode(wire)
        self.received.append(packet)
        self.client_sid = packet.session_id
        self._reliable.acknowledge(packet.acks)
        if packet.message_id is not None:
            self._reliable.receive(Message(packet.message_id, packet.opcode, packet.payload))
        for message in self._reliable.deliver():
            if message.opcode is Opcode.CONTROL_HARD_RESET_CLIENT_V2:
                self._reliable.queue(Opcode.CONTROL_HARD_RESET_SERVER_V2, b"")
                continue
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
        if self.key_method is None and len(self._plaintext) > 5 + 112:
            self.key_method, self._plaintext = self._plaintext, b""
            options = b"V4,dev-type tun\x00"
            reply = b"\x00\x00\x00\x00\x02" + b"r" * 64 + struct.pack("!H", len(options))
            self._tls.write(reply + options + b"\x00\x00" * 3)
        if b"PUSH_REQUEST\x00" in self._plaintext:
            self._plaintext = b""
            self._tls.write(self._answer + b"\x00")
        self._flush_tls()

    def _flush_tls(self) -> None:
        data = self._out.read()
        for start in range(0, len(data), 1000):
            self._reliable.queue(Opcode.CONTROL_V1, data[start : start + 1000])

    def packets(self, now: float) -> list[bytes]:
        assert self.client_sid is not None
        out = []
        for message in self._reliable.due(now):
            acks = self._reliable.take_acks(8)
            out.append(
                ControlPacket(
                    message.opcode,
                    SERVER_SID,
                    acks,
                    self.client_sid if acks else None,
                    message.message_id,
                    message.payload,
                ).encode()
            )
        return out


def make_client(pki: Pki, *, ca: str | None = None, **requirements: object) -> OpenVPNClient:
    config = ClientConfig(
        tls_context=build_context(ca or pki.ca),
        peer_requirements=PeerRequirements(**requirements),  # type: ignore[arg-type]
        options="V4,dev-type tun,tls-client",
        peer_info=peer_info(version="2.6.0", ciphers="AES-256-GCM", monitor="test"),
        credentials=Credentials("probe", "s3cret"),
    )
    counter = iter(range(1, 1 << 30))
    return OpenVPNClient(
        config,
        NoWrap(),
        now=0.0,
        unix_time=1_700_000_000.0,
        random_bytes=lambda n: bytes([next(counter) % 256]) * n,
    )


def run(client: OpenVPNClient, server: FakeServer, rounds: int = 20) -> list[object]:
    events: list[object] = []
    now = 0.0
    for _ in range(rounds):
        for wire in client.packets_to_send(now):
            server.receive(wire)
        for wire in server.packets(now):
            client.receive(wire, now)
        while (event := client.next_event()) is not None:
            events.append(event)
        if client.finished:
            break
        now += 0.01
    return events


def test_full_handshake(pki: Pki, tmp_path: Path) -> None:
    server = FakeServer(pki, tmp_path)
    events = run(
        make_client(pki, remote_cert_tls_server=True, x509_name=SERVER_NAME, x509_name_type="name"),
        server,
    )
    assert [type(e) for e in events] == [ResetAcknowledged, TlsEstablished, PushReplyReceived]
    assert server.key_method is not None
    assert b"probe\x00" in server.key_method and b"s3cret\x00" in server.key_method


def test_first_packet_after_server_reset_acks_it_with_its_session_id(
    pki: Pki, tmp_path: Path
) -> None:
    server = FakeServer(pki, tmp_path)
    run(make_client(pki), server, rounds=2)
    reset, hello = server.received[0], server.received[1]
    assert reset.opcode is Opcode.CONTROL_HARD_RESET_CLIENT_V2 and reset.message_id == 0
    assert hello.opcode is Opcode.CONTROL_V1 and hello.message_id == 1
    assert hello.acks == (0,) and hello.remote_session_id == SERVER_SID


def test_packets_stay_within_tls_mtu(pki: Pki, tmp_path: Path) -> None:
    client = make_client(pki)
    server = FakeServer(pki, tmp_path)
    sizes = []
    now = 0.0
    for _ in range(20):
        for wire in client.packets_to_send(now):
            sizes.append(len(wire))
            server.receive(wire)
        for wire in server.packets(now):
            client.receive(wire, now)
        now += 0.01
    assert max(sizes) <= TLS_MTU


def test_auth_failed(pki: Pki, tmp_path: Path) -> None:
    events = run(make_client(pki), FakeServer(pki, tmp_path, answer=b"AUTH_FAILED,bad password"))
    failure = events[-1]
    assert isinstance(failure, HandshakeFailed) and failure.reason is FailureReason.AUTH
    assert "bad password" in failure.detail


def test_wrong_ca_is_a_certificate_failure(pki: Pki, tmp_path: Path) -> None:
    events = run(make_client(pki, ca=generate_pki().ca), FakeServer(pki, tmp_path))
    failure = events[-1]
    assert isinstance(failure, HandshakeFailed) and failure.reason is FailureReason.CERTIFICATE


@pytest.mark.parametrize(
    "requirements",
    [
        {"x509_name": "someone-else", "x509_name_type": "name"},
        {"x509_name": "vpnwatch-lab-serverX", "x509_name_type": "name-prefix"},
        {"x509_name": "CN=other", "x509_name_type": "subject"},
    ],
)
def test_name_mismatch_is_a_certificate_failure(
    pki: Pki, tmp_path: Path, requirements: dict[str, object]
) -> None:
    events = run(make_client(pki, **requirements), FakeServer(pki, tmp_path))
    failure = events[-1]
    assert isinstance(failure, HandshakeFailed) and failure.reason is FailureReason.CERTIFICATE


def test_subject_form_matches_openvpn_spelling(pki: Pki, tmp_path: Path) -> None:
    client = make_client(pki, x509_name=f"CN={SERVER_NAME}", x509_name_type="subject")
    assert isinstance(run(client, FakeServer(pki, tmp_path))[-1], PushReplyReceived)


def test_reset_is_retransmitted_on_the_timer(pki: Pki) -> None:
    client = make_client(pki)
    assert len(client.packets_to_send(0.0)) == 1
    assert client.timer() == 2.0
    assert client.packets_to_send(1.0) == []
    assert len(client.packets_to_send(2.0)) == 1
    assert client.timer() == 6.0


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
    client.packets_to_send(0.0)
    reset = ControlPacket(
        Opcode.CONTROL_HARD_RESET_SERVER_V2, SERVER_SID, (0,), client.session_id, 0
    )
    for data in [
        *garbage,
        reset.encode(),
        *garbage,
        reset.encode()[:-1],
        b"\x20" + SERVER_SID + b"\x00" * 40,
    ]:
        client.receive(data, 0.1)
    client.packets_to_send(0.2)
    assert client.dropped.total() >= 1
