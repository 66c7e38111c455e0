"""Every protocol parser, fed damaged copies of valid messages: a result or its own error, nothing else.

The documented contracts under test:

* WireGuard: ``WireGuardInitiator.receive`` never raises, fails the probe for no forged datagram,
  and acts only on a verified response (it completes) or cookie reply (it initiates again);
* OpenVPN: ``decode``, ``TcpDeframer.feed``, every wrapper's ``unwrap`` and the data channel's
  ``open`` (every suite, from the real server's packets) raise only ``PacketError``, and the data
  channel opens nothing but the genuine packet; ``OpenVPNClient.receive`` never raises (bad packets are counted, failures are
  events); key-method parsing raises only ``KeyMethodError``; the reliability layer delivers each
  message once, in order, and buffers a bounded number;
* obfs4: the client handshake and the session raise only ``Obfs4Error`` subclasses;
* Tor link: ``TorLinkClient.receive`` never raises and completes only on the relay's own cells;
  CERTS validation raises only ``CertsError``.

The existing property tests beside each module feed random bytes; these start from valid
messages, which is what reaches past the first length check.
"""

from __future__ import annotations

import functools
import ipaddress
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import FUZZ, FUZZ_SLOW, chunked, count, mutated, no_hang
from tests.hardening.seeds import (
    CLIENT_SESSION,
    SERVER_COMMANDS,
    SERVER_KEY_METHOD,
    WireGuardPeers,
    obfs4_capture,
    obfs4_frames,
    openvpn_tcp_stream,
    openvpn_wire,
    openvpn_wrappers,
)
from tests.machines import Clear, drain
from tests.vectors.openvpn_data import data_captures
from tests.vectors.shadowsocks import captures as shadowsocks_captures
from tests.vectors.tor import CERTS, CREATED_FAST, RawCell, split_cells, split_certs
from tests.vectors.tor import captures as tor_captures
from vpnwatch.lab.openvpn import generate_pki
from vpnwatch.probes.shadowsocks import shadowsocks_client
from vpnwatch.protocols import ip, wireguard
from vpnwatch.protocols.machine import Completed, Event, StageCompleted
from vpnwatch.protocols.obfs4 import (
    NEED_DATA,
    DataReceived,
    HelloAccepted,
    Obfs4Error,
    Obfs4Session,
)
from vpnwatch.protocols.openvpn import keymethod
from vpnwatch.protocols.openvpn.client import ClientConfig, OpenVPNClient
from vpnwatch.protocols.openvpn.datachannel import negotiated_channel
from vpnwatch.protocols.openvpn.datakeys import KeySources, prf_key_block
from vpnwatch.protocols.openvpn.packets import (
    MAX_PACKET_SIZE,
    Opcode,
    PacketError,
    TcpDeframer,
    decode,
)
from vpnwatch.protocols.openvpn.push import parse_options
from vpnwatch.protocols.openvpn.reliable import RECEIVE_WINDOW, Message, ReliableLayer
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.tor.certs import CertsError, verify_responder_certs
from vpnwatch.protocols.tunnel import TunnelTest
from vpnwatch.quality import TrainPlan
from vpnwatch.result import Failure

WIREGUARD = WireGuardPeers.generate()
_STAMP = iter(range(10**18, 2 * 10**18, 1000))
OPENVPN_KINDS = sorted(openvpn_wrappers())


# -- WireGuard ------------------------------------------------------------------------------------


@FUZZ_SLOW
@given(data=st.data())
def test_wireguard_initiator_only_a_verified_reply_changes_its_state(data: st.DataObject) -> None:
    initiator = wireguard.WireGuardInitiator(
        wireguard.NoiseHandshake(WIREGUARD.client_private, WIREGUARD.server_public),
        timestamps=lambda: wireguard.tai64n(next(_STAMP)),
    )
    initiator.start(0.0)
    [initiation] = initiator.data_to_send(0.0)
    genuine = WIREGUARD.response(initiation)
    seeds = [genuine, WIREGUARD.cookie_reply(initiation)]
    datagrams = data.draw(st.lists(mutated(seeds, max_size=65_507), min_size=1, max_size=6))
    with no_hang():
        for datagram in datagrams:
            initiator.receive(datagram, 0.0)
            for sent in initiator.data_to_send(0.0):
                if sent[0] == wireguard.MESSAGE_INITIATION:  # a retry, after a cookie reply
                    initiation = sent
            while (event := initiator.next_event()) is not None:
                # Nothing forged fails the probe, and nothing else authenticates; mac2 is not
                # checked (servers send it zero).
                assert isinstance(event, (StageCompleted, Completed)), event
                assert datagram[:-16] == genuine[:-16] and len(datagram) == len(genuine)
            if initiator.finished:
                break
    count("wireguard.receive", len(datagrams))
    assert initiator.timed_out().failure in (Failure.TIMEOUT, Failure.PROTOCOL)
    if not initiator.finished:  # whatever came before, a genuine reply still completes it
        initiator.receive(WIREGUARD.response(initiation), 0.0)
        assert initiator.finished and isinstance(initiator.session, wireguard.ResponseAccepted)


# -- OpenVPN packets and wrappers -----------------------------------------------------------------


@functools.cache
def _data_key_block(name: str) -> bytes:
    capture = data_captures()[name]
    sources = KeySources.split(capture.client_source, capture.server_source)
    return prf_key_block(sources, capture.client_session, capture.server_session)


@FUZZ
@pytest.mark.parametrize("name", sorted(data_captures()))
@given(data=st.data())
def test_openvpn_data_channel_opens_only_genuine_packets(name: str, data: st.DataObject) -> None:
    capture = data_captures()[name]
    packet = data.draw(mutated(capture.server_packets, max_size=4 * MAX_PACKET_SIZE))
    channel = negotiated_channel(
        parse_options(
            [f"peer-id {capture.peer_id}", *([capture.compression] * bool(capture.compression))]
        ),
        capture.cipher,
        capture.digest,
        _data_key_block(name),
    )
    count("openvpn.datachannel.open")
    with no_hang():
        try:
            channel.open(packet)
        except PacketError:
            return
    # Only an untouched packet authenticates; with CBC, whose HMAC covers the IV and ciphertext
    # only, the peer-id in the header may differ (OpenVPN's client does not read it either).
    if "CBC" in capture.cipher:
        assert packet[:1] + packet[4:] in [p[:1] + p[4:] for p in capture.server_packets]
    else:
        assert packet in capture.server_packets


@FUZZ
@given(packet=mutated(openvpn_wire("none"), max_size=4 * MAX_PACKET_SIZE))
def test_openvpn_decode_gives_a_canonical_packet_or_packet_error(packet: bytes) -> None:
    count("openvpn.decode")
    with no_hang():
        try:
            decoded = decode(packet)
        except PacketError:
            return
    assert decoded.encode() == packet  # one encoding per packet: nothing was silently dropped


@FUZZ
@pytest.mark.parametrize("kind", ["tls-auth", "tls-crypt"])
@given(data=st.data())
def test_openvpn_unwrap_raises_only_packet_error(kind: str, data: st.DataObject) -> None:
    wire = openvpn_wire(kind)
    packet = data.draw(mutated(wire, max_size=4 * MAX_PACKET_SIZE))
    count(f"openvpn.unwrap.{kind}")
    with no_hang():
        try:
            openvpn_wrappers()[kind].unwrap(packet)
        except PacketError:
            assert packet not in wire
        else:  # it authenticated: only an untouched packet can
            assert packet in wire


@FUZZ
@given(data=st.data())
def test_openvpn_tcp_deframer_raises_only_packet_error(data: st.DataObject) -> None:
    stream = data.draw(mutated([openvpn_tcp_stream()], max_size=200_000))
    chunks = data.draw(chunked(stream))
    deframer = TcpDeframer()
    count("openvpn.tcp_frames", len(chunks))
    with no_hang():
        try:
            for chunk in chunks:
                for packet in deframer.feed(chunk):
                    assert 0 < len(packet) <= MAX_PACKET_SIZE
        except PacketError:
            pass


@FUZZ
@given(
    operations=st.lists(
        st.one_of(
            st.tuples(st.just("receive"), st.integers(0, 2**32 - 1) | st.integers(0, 30)),
            st.tuples(st.just("ack"), st.integers(0, 2**32 - 1) | st.integers(0, 10)),
            st.tuples(st.just("due"), st.integers(0, 100)),
        ),
        max_size=60,
    )
)
def test_openvpn_reliability_delivers_once_in_order_and_buffers_little(
    operations: list[tuple[str, int]],
) -> None:
    layer = ReliableLayer()
    for _ in range(8):
        layer.queue(Opcode.CONTROL_V1, b"x")
    delivered: list[int] = []
    count("openvpn.reliable", len(operations))
    for operation, value in operations:
        if operation == "receive":
            layer.receive(Message(value, Opcode.CONTROL_V1, b""))
            delivered += [message.message_id for message in layer.deliver()]
        elif operation == "ack":
            layer.acknowledge((value,))
        else:
            assert len(layer.due(float(value))) <= 8
    assert delivered == list(range(len(delivered)))
    owed = layer.take_acks(10**6)
    assert len(owed) == len(set(owed)) <= len(delivered) + RECEIVE_WINDOW


# -- the OpenVPN client machine -------------------------------------------------------------------


@pytest.fixture(scope="module")
def openvpn_config() -> ClientConfig:
    return ClientConfig(
        tls_context=build_context(generate_pki().ca),
        peer_requirements=PeerRequirements(),
        options="V4,dev-type tun",
        peer_info="IV_VER=2.6.0\n",
    )


@FUZZ_SLOW
@pytest.mark.parametrize("kind", OPENVPN_KINDS)
@given(data=st.data())
def test_openvpn_client_never_raises_for_what_arrives(
    openvpn_config: ClientConfig, kind: str, data: st.DataObject
) -> None:
    wire = openvpn_wire(kind)
    packets = data.draw(st.lists(mutated(wire, max_size=4 * MAX_PACKET_SIZE), max_size=8))
    client = OpenVPNClient(
        openvpn_config,
        openvpn_wrappers()[kind],
        unix_time=1.7e9,
        random_bytes=lambda n: CLIENT_SESSION[:n] if n == 8 else os.urandom(n),
    )
    client.start(0.0)
    count(f"openvpn.client.{kind}", len(packets) + 1)
    with no_hang():
        for now, packet in enumerate([wire[0], *packets]):
            client.receive(packet, float(now))
            client.handle_timer(float(now))
            client.data_to_send(float(now))
            while (event := client.next_event()) is not None:
                assert isinstance(event, Event)


@FUZZ
@given(plaintext=mutated([SERVER_KEY_METHOD, SERVER_KEY_METHOD + SERVER_COMMANDS]))
def test_openvpn_key_method_parser_raises_only_its_error(plaintext: bytes) -> None:
    count("openvpn.key_method")
    with no_hang():
        try:
            parsed = keymethod.parse_server_key_method(plaintext)
        except keymethod.KeyMethodError:
            return
    if parsed is not None:
        _, used = parsed
        commands, rest = keymethod.split_commands(plaintext[used:])
        assert all(keymethod.printable(command) for command in commands)
        assert b"\x00" not in rest


@FUZZ
@given(text=st.text(max_size=5000))
def test_server_text_is_made_one_short_printable_line(text: str) -> None:
    count("openvpn.printable")
    line = keymethod.printable(text)
    assert len(line) <= 120 and line.isprintable()


# -- obfs4 ----------------------------------------------------------------------------------------

OBFS4 = obfs4_capture()


@FUZZ
@given(data=st.data())
def test_obfs4_server_hello_completes_or_raises_an_obfs4_error(data: st.DataObject) -> None:
    genuine = OBFS4.hello.raw
    hello = data.draw(mutated([genuine, OBFS4.sent("server")], max_size=20_000))
    chunks = data.draw(chunked(hello))
    client = OBFS4.handshake()
    count("obfs4.server_hello", len(chunks))
    with no_hang():
        try:
            for chunk in chunks:
                client.receive_data(chunk)
                event = client.next_event()
                if isinstance(event, HelloAccepted):
                    assert hello.startswith(genuine)  # only the genuine hello completes
                    return
                assert event is NEED_DATA
        except Obfs4Error:
            pass


@FUZZ
@given(data=st.data())
def test_obfs4_frames_decode_or_raise_an_obfs4_error(data: st.DataObject) -> None:
    frames = obfs4_frames()
    stream = data.draw(mutated([frames], max_size=100_000))
    chunks = data.draw(chunked(stream))
    session = Obfs4Session(bytes(72), bytes(range(72)))
    received = b""
    count("obfs4.frames", len(chunks))
    with no_hang():
        try:
            for chunk in chunks:
                session.receive_data(chunk)
                while isinstance(event := session.next_event(), DataReceived):
                    received += event.data
        except Obfs4Error:
            pass
    # Frames are authenticated: whatever came out is a prefix of what was sent.
    assert (b"hello" * 400).startswith(received)


# -- Tor link -------------------------------------------------------------------------------------

TOR = tor_captures()["link"]


@FUZZ_SLOW
@given(data=st.data())
def test_tor_link_never_raises_and_only_the_genuine_relay_completes(data: st.DataObject) -> None:
    genuine = TOR.sent("server")
    stream = data.draw(mutated([genuine], max_size=20_000))
    chunks = data.draw(chunked(stream))
    client = TOR.client()
    client.start(0.0)
    count("tor.link", len(chunks))
    with no_hang():
        for chunk in chunks:
            client.receive(chunk, 0.0)
            client.data_to_send(0.0)
            for event in drain(client):
                if isinstance(event, Completed):
                    # What is not checked may change (a challenge nobody answers, a timestamp,
                    # padding); what completes it cannot: the identity and the circuit's reply.
                    cells: dict[int, RawCell] = {}
                    for cell in split_cells(stream):
                        cells.setdefault(cell.command, cell)
                    assert split_certs(cells[CERTS].payload)[2] == TOR.certs()[2]
                    assert cells[CREATED_FAST].payload[:40] == TOR.server_cells()[-1].payload[:40]
            if client.finished:
                break
    assert client.timed_out().failure is Failure.TIMEOUT


# -- Tunnel tests: the echoes inside a tunnel -----------------------------------------------------

_V4 = ipaddress.IPv4Address("198.19.1.2"), ipaddress.IPv4Address("198.19.1.1")
_V6 = ipaddress.IPv6Address("2001:2:0:101::2"), ipaddress.IPv6Address("2001:2:0:101::1")
_ECHOES = [
    packet
    for source, destination in (_V4, _V6)
    for request in [ip.echo_request(source, destination, 7, 9, bytes(range(56)))]
    for packet in (request, ip.answer(request) or b"")
]


@FUZZ
@given(packet=mutated(_ECHOES, max_size=2048))
def test_ip_parse_gives_an_echo_an_icmp_error_or_nothing(packet: bytes) -> None:
    count("ip.parse")
    with no_hang():
        parsed = ip.parse(packet)
    assert parsed is None or isinstance(parsed, ip.Echo | ip.IcmpError)


@FUZZ
@given(data=st.data())
def test_tor_certs_verify_or_raise_a_certs_error(data: st.DataObject) -> None:
    certs = dict(TOR.certs())
    kind = data.draw(st.sampled_from(sorted(certs)))
    certs[kind] = data.draw(mutated([certs[kind]], max_size=4096))
    count("tor.certs")
    with no_hang():
        try:
            verify_responder_certs(certs, TOR.tls_certificate, TOR.fingerprint, TOR.unix_time)
        except CertsError:
            return
    # It verified: the mutation changed nothing a signature covers (DER's unsigned outer fields
    # at most), or it left the certificate as it was.
    assert kind in (1, 2) or certs[kind] == TOR.certs()[kind]


@FUZZ
@pytest.mark.parametrize("capture", ["aes-128-gcm", "obfs-http", "obfs-tls", "v2ray-ws"])
@given(data=st.data())
def test_shadowsocks_client_never_raises_and_completes_only_on_the_genuine_answer(
    capture: str, data: st.DataObject
) -> None:
    """Damaged answers from ss-server (alone and behind each plugin): a Failed event or nothing,
    never an exception; completion only when the answer began as the real server's did."""
    recorded = shadowsocks_captures()[capture]
    genuine = recorded.sent("server")
    answer = data.draw(mutated([genuine], max_size=50_000))
    chunks = data.draw(chunked(answer))
    draws = iter(recorded.draws)  # then fresh ones: a damaged answer may ask for a pong's mask
    client = shadowsocks_client(
        recorded.target(),
        random_bytes=lambda n: next(draws, None) or os.urandom(n),
        unix_time=recorded.unix_time,
    )
    client.start(0.0)
    count(f"shadowsocks.{capture}", len(chunks))
    with no_hang():
        for chunk in chunks:
            client.receive(chunk, 1.0)
            client.data_to_send(1.0)
        events = drain(client)
    if capture == "aes-128-gcm" and any(isinstance(event, Completed) for event in events):
        # The salt and the first chunk's sealed length are what the answer's proof starts with.
        assert answer.startswith(genuine[: 16 + 18])


@FUZZ
@given(data=st.data())
def test_a_tunnel_test_never_raises_and_counts_only_its_own_replies(data: st.DataObject) -> None:
    count("tunnel.receive")
    plan = TrainPlan(echoes=3, burst=0, hold_seconds=0)
    # The seeds' identifier (7) and payload: mutated replies to them reach the matching.
    draws = iter([b"\x00\x07", bytes(range(56))])
    test = TunnelTest(Clear(), *_V4, plan, random_bytes=lambda n: next(draws)[:n])
    test.start(0.0)
    for packet in data.draw(st.lists(mutated(_ECHOES, max_size=512), max_size=8)):
        with no_hang():
            test.receive(packet, 0.01)
    assert test.quality().train_received <= test.quality().train_sent
