"""The client against the real openvpn server's answers, replayed from tests/vectors.

Every server packet here is Debian openvpn's (``tests/vectors/openvpn.json``), or one with a byte
changed; the packets are read with the wire format of :mod:`tests.vectors.openvpn`, written from
OpenVPN's documentation, never with vpnwatch's. The replay stops where TLS begins: OpenSSL's
randomness cannot be injected, so only the framing of the client's ClientHello packet is compared.
"""

from __future__ import annotations

import pytest

from tests.vectors.openvpn import (
    HEADER,
    P_CONTROL_HARD_RESET_CLIENT_V2,
    P_CONTROL_HARD_RESET_CLIENT_V3,
    P_CONTROL_HARD_RESET_SERVER_V2,
    P_CONTROL_V1,
    OpenVPNCapture,
    Packet,
    Step,
    captures,
    frame,
)
from vpnwatch.protocols.machine import Event, StageCompleted
from vpnwatch.protocols.openvpn.client import ClientConfig, OpenVPNClient
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.openvpn.wrappers import KeyDirection, make_wrapper
from vpnwatch.result import Failure

NAMES = sorted(captures())
WRAPPED = [name for name in NAMES if captures()[name].wrap != "none"]
PLAIN = [name for name in NAMES if captures()[name].wrap == "none"]


def test_the_captures_cover_every_wrapping_and_both_transports() -> None:
    kinds = {(c.proto, c.wrap) for c in captures().values()}
    assert {wrap for _, wrap in kinds} == {"none", "tls-auth", "tls-crypt", "tls-crypt-v2"}
    assert {proto for proto, _ in kinds} == {"udp", "tcp"}


def client_for(capture: OpenVPNCapture) -> OpenVPNClient:
    """A client given the capture's inputs, started at 0.0 as the recorded one was."""
    config = ClientConfig(
        tls_context=build_context(capture.ca),
        peer_requirements=PeerRequirements(),
        options=capture.options,
        peer_info=capture.peer_info,
        tls_crypt_v2=capture.wrap == "tls-crypt-v2",
        tcp=capture.tcp,
    )
    # As the lab configures its clients: tls-auth with key-direction 1.
    direction: KeyDirection = 1 if capture.wrap == "tls-auth" else None
    client = OpenVPNClient(
        config,
        make_wrapper(capture.wrap, capture.key, direction=direction),
        unix_time=capture.unix_time,
        random_bytes=capture.random_bytes(),
    )
    client.start(0.0)
    return client


def replay(client: OpenVPNClient, capture: OpenVPNCapture, steps: tuple[Step, ...]) -> None:
    """Hand the client the server's inputs and demand, byte for byte, the packets recorded."""
    for step in steps:
        if step.side == "client":
            assert client.data_to_send(step.at) == list(step.data), f"{capture.name} at {step.at}"
        else:
            for data in step.data:
                client.receive(data, step.at)


def events(client: OpenVPNClient) -> list[Event]:
    return list(iter(client.next_event, None))


def server_reset(capture: OpenVPNCapture) -> Packet:
    (packet,) = capture.packets(capture.steps[capture.reset_index])
    return capture.client_wrap().open(packet)


@pytest.mark.parametrize("name", NAMES)
def test_the_recorded_packets_read_as_the_specification_says(name: str) -> None:
    """The wire format the tests answer the client with agrees with the real server's bytes."""
    capture = captures()[name]
    (first,) = capture.packets(capture.steps[0])
    reset = capture.server_wrap().open(first)
    v2 = capture.wrap == "tls-crypt-v2"
    assert reset.opcode == (
        P_CONTROL_HARD_RESET_CLIENT_V3 if v2 else P_CONTROL_HARD_RESET_CLIENT_V2
    )
    assert (reset.message_id, reset.acks, reset.payload) == (0, (), b"")
    assert reset.session_id == capture.draws[0]  # the first draw of randomness
    assert reset.wkc == (capture.key[256:] if v2 and capture.key else b"")
    if capture.wrap != "none":
        assert reset.stamp == (1, int(capture.unix_time))
    answer = server_reset(capture)
    assert answer.opcode == P_CONTROL_HARD_RESET_SERVER_V2
    assert (answer.message_id, answer.acks, answer.payload) == (0, (0,), b"")
    assert answer.remote_session_id == reset.session_id


@pytest.mark.parametrize("name", NAMES)
def test_client_sends_what_the_real_server_answered_and_accepts_its_reset(name: str) -> None:
    capture = captures()[name]
    client = client_for(capture)
    replay(client, capture, capture.steps[: capture.reset_index + 1])
    assert events(client) == [StageCompleted("reset")]
    assert client.dropped.total() == 0 and not client.finished
    assert client.remote_session_id == server_reset(capture).session_id


@pytest.mark.parametrize("name", NAMES)
def test_the_client_hello_packet_is_framed_as_recorded(name: str) -> None:
    """Everything but the TLS record (and the MAC or ciphertext over it) is as recorded."""
    capture = captures()[name]
    client = client_for(capture)
    replay(client, capture, capture.steps[: capture.reset_index + 1])
    last = capture.steps[-1]
    assert last.side == "client" and capture.reset_index == len(capture.steps) - 2
    sent = client.data_to_send(last.at)
    reader = capture.server_wrap()
    replayed = [reader.open(p) for p in capture.packets(Step("client", last.at, tuple(sent)))]
    recorded = [reader.open(p) for p in capture.packets(last)]
    assert len(replayed) == len(recorded) == 1
    (new,), (old,) = replayed, recorded
    fields = ("opcode", "key_id", "session_id", "acks", "remote_session_id", "message_id", "stamp")
    assert [getattr(new, f) for f in fields] == [getattr(old, f) for f in fields]
    assert (new.opcode, new.acks, new.message_id) == (P_CONTROL_V1, (0,), 1)
    assert new.payload[:2] == old.payload[:2] == b"\x16\x03"  # a TLS handshake record


def tampered(capture: OpenVPNCapture, position: int, bit: int = 1) -> bytes:
    """The server's reset with one byte changed (over TCP, framed again)."""
    (packet,) = capture.packets(capture.steps[capture.reset_index])
    changed = bytearray(packet)
    changed[position] ^= bit
    return frame(bytes(changed)) if capture.tcp else bytes(changed)


@pytest.mark.parametrize("name", WRAPPED)
@pytest.mark.parametrize(
    "position",
    [0, 1, HEADER, HEADER + 8, -1],
    ids=["key-id", "session-id", "after-header", "mac-or-tag", "last"],
)
def test_a_tampered_server_reset_is_dropped_as_unauthenticated(name: str, position: int) -> None:
    capture = captures()[name]
    client = client_for(capture)
    replay(client, capture, capture.steps[: capture.reset_index])
    at = capture.steps[capture.reset_index].at
    retransmit = client.timer()
    client.receive(tampered(capture, position), at)
    assert events(client) == [] and not client.finished
    assert (client.dropped.unauthenticated, client.dropped.total()) == (1, 1)
    assert client.remote_session_id is None and client.timer() == retransmit
    assert client.timed_out().failure is Failure.AUTH
    replay(client, capture, capture.steps[capture.reset_index : capture.reset_index + 1])
    assert events(client) == [StageCompleted("reset")], "the forgery must not spoil the session"


@pytest.mark.parametrize("name", PLAIN)
def test_a_plain_reset_acknowledging_another_session_is_foreign(name: str) -> None:
    """Without wrapping nothing authenticates the reset: only its session ids tie it to us."""
    capture = captures()[name]
    client = client_for(capture)
    replay(client, capture, capture.steps[: capture.reset_index])
    acked_session_at = HEADER + 1 + 4  # after the ACK count and the one acked message id
    client.receive(tampered(capture, acked_session_at), capture.steps[capture.reset_index].at)
    assert events(client) == [] and client.remote_session_id is None
    assert (client.dropped.foreign, client.dropped.total()) == (1, 1)
    assert client.timed_out().failure is Failure.TIMEOUT
