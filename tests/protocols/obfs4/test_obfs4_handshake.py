"""The client handshake against the real obfs4proxy's answers, replayed from tests/vectors.

Every server hello here is obfs4proxy's (``tests/vectors/obfs4.json``), or one changed with the
standard library's HMAC: no code of the implementation builds the server's side.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from tests.vectors.obfs4 import Obfs4Capture, captures, tag
from vpnwatch.protocols.obfs4 import (
    NEED_DATA,
    ClientHandshake,
    HelloAccepted,
    MalformedHandshake,
    Obfs4Error,
    Obfs4Session,
    ServerAuthFailed,
)
from vpnwatch.protocols.obfs4.handshake import (
    CLIENT_MAX_PAD_LENGTH,
    CLIENT_MIN_PAD_LENGTH,
    MAX_HANDSHAKE_LENGTH,
)

NOW = 1_750_000_000.0


@pytest.fixture(scope="module")
def capture() -> Obfs4Capture:
    return captures()["handshake"]


def accepted(client: ClientHandshake, data: bytes) -> HelloAccepted:
    client.receive_data(data)
    event = client.next_event()
    assert isinstance(event, HelloAccepted), event
    return event


@pytest.mark.parametrize("name", sorted(captures()))
def test_request_is_the_one_the_real_bridge_answered(name: str) -> None:
    capture = captures()[name]
    request = capture.handshake().data_to_send()
    assert request == capture.request
    hour = str(int(capture.unix_time // 3600)).encode()
    padding_end = 32 + capture.pad_length
    assert request[:32] == capture.keypair.representative
    assert request[32:padding_end] == capture.draws[0]
    assert request[padding_end:-16] == tag(capture.mac_key, request[:32])
    assert request[-16:] == tag(capture.mac_key, request[:-16], hour)


def test_padding_stays_within_the_specified_bounds(capture: Obfs4Capture) -> None:
    def client(**kwargs: object) -> ClientHandshake:
        return ClientHandshake(capture.node_id, capture.public_key, now=NOW, **kwargs)  # type: ignore[arg-type]

    for _ in range(50):
        padding = len(client().data_to_send()) - 64
        assert CLIENT_MIN_PAD_LENGTH <= padding <= CLIENT_MAX_PAD_LENGTH
    assert (CLIENT_MIN_PAD_LENGTH, CLIENT_MAX_PAD_LENGTH) == (85, 8128)
    for bad in (CLIENT_MIN_PAD_LENGTH - 1, CLIENT_MAX_PAD_LENGTH + 1):
        with pytest.raises(ValueError):
            client(pad_length=bad)


def test_real_hello_completes_and_the_first_frames_open(capture: Obfs4Capture) -> None:
    """The frames after the hello (obfs4proxy's PRNG seed) open with the derived session keys."""
    server = capture.sent("server")
    hello = capture.hello.raw
    completed = accepted(capture.handshake(), server)
    assert completed.trailing == server[len(hello) :] != b""
    session = Obfs4Session.for_client(completed.key_material)
    session.receive_data(completed.trailing)
    assert session.next_event() is NEED_DATA  # authenticated, and no payload: only the seed


def test_hello_arriving_byte_by_byte(capture: Obfs4Capture) -> None:
    client = capture.handshake()
    hello = capture.hello.raw
    for byte in hello[:-1]:
        client.receive_data(bytes([byte]))
        assert client.next_event() is NEED_DATA
    assert accepted(client, hello[-1:]).trailing == b""


def test_wrong_auth_is_an_auth_failure(capture: Obfs4Capture) -> None:
    client = capture.handshake()
    client.receive_data(capture.hello.with_auth_flipped())
    with pytest.raises(ServerAuthFailed):
        client.next_event()


def test_wrong_mac_is_malformed(capture: Obfs4Capture) -> None:
    client = capture.handshake()
    client.receive_data(capture.hello.with_mac_flipped())
    with pytest.raises(MalformedHandshake, match="MAC"):
        client.next_event()


@pytest.mark.parametrize("skew", [-1, 1])
def test_adjacent_epoch_hours_are_accepted(capture: Obfs4Capture, skew: int) -> None:
    hello = capture.hello
    accepted(capture.handshake(), hello.remac(hello.raw[:-16], hello.epoch_hour + skew))


@pytest.mark.parametrize("skew", [-2, 2])
def test_distant_epoch_hours_are_rejected(capture: Obfs4Capture, skew: int) -> None:
    hello = capture.hello
    client = capture.handshake()
    client.receive_data(hello.remac(hello.raw[:-16], hello.epoch_hour + skew))
    with pytest.raises(MalformedHandshake, match="MAC"):
        client.next_event()


def test_low_order_server_key_is_refused(capture: Obfs4Capture) -> None:
    """Representative 0 maps to u = 0, whose shared secret is all zeros."""
    body = bytes(32) + bytes(32) + os.urandom(50) + tag(capture.mac_key, bytes(32))
    client = capture.handshake()
    client.receive_data(capture.hello.remac(body))
    with pytest.raises(MalformedHandshake, match="low-order"):
        client.next_event()


def test_garbage_without_a_mark_is_refused_at_the_size_limit(capture: Obfs4Capture) -> None:
    client = capture.handshake()
    client.receive_data(os.urandom(MAX_HANDSHAKE_LENGTH - 1))
    assert client.next_event() is NEED_DATA
    client.receive_data(os.urandom(1))
    with pytest.raises(MalformedHandshake, match="no server mark"):
        client.next_event()


def test_hello_for_another_bridge_never_completes(capture: Obfs4Capture) -> None:
    """The mark is keyed with the node id: a client of another bridge finds none and waits."""
    client = capture.handshake(node_id=os.urandom(20))
    client.receive_data(capture.sent("server"))
    assert client.next_event() is NEED_DATA


@given(st.lists(st.binary(max_size=3000), max_size=6))
def test_hostile_bytes_give_only_the_modules_errors(chunks: list[bytes]) -> None:
    identity = X25519PrivateKey.generate().public_key().public_bytes_raw()
    client = ClientHandshake(bytes(20), identity, now=NOW, pad_length=85)
    try:
        for chunk in chunks:
            client.receive_data(chunk)
            assert client.next_event() is NEED_DATA
    except Obfs4Error:
        pass
