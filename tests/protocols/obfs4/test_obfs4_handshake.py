"""The client handshake against an in-memory server that knows the bridge's keys."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from vpnwatch.lab.obfs4 import BridgeIdentity, impostor_hello
from vpnwatch.protocols.obfs4 import (
    NEED_DATA,
    ClientHandshake,
    DataReceived,
    HandshakeCompleted,
    MalformedHandshake,
    Obfs4Error,
    Obfs4Session,
    ServerAuthFailed,
)
from vpnwatch.protocols.obfs4.handshake import (
    CLIENT_MAX_PAD_LENGTH,
    CLIENT_MIN_PAD_LENGTH,
    MAX_HANDSHAKE_LENGTH,
    epoch_hour,
    hmac_sha256_128,
)

NOW = 1_750_000_000.0


@pytest.fixture(scope="module")
def bridge() -> BridgeIdentity:
    private = X25519PrivateKey.generate()
    return BridgeIdentity(
        node_id=os.urandom(20),
        public_key=private.public_key().public_bytes_raw(),
        private_key=private.private_bytes_raw(),
    )


def client_for(bridge: BridgeIdentity, **kwargs: object) -> ClientHandshake:
    return ClientHandshake(bridge.node_id, bridge.public_key, now=NOW, **kwargs)  # type: ignore[arg-type]


def hello_for(
    client: ClientHandshake, bridge: BridgeIdentity, *, corrupt_auth: bool = False
) -> tuple[bytes, Obfs4Session]:
    answered = impostor_hello(client.data_to_send(), bridge, now=NOW, corrupt_auth=corrupt_auth)
    assert answered is not None
    return answered


def remac(hello: bytes, bridge: BridgeIdentity, hour: int) -> bytes:
    body = hello[:-16]
    return body + hmac_sha256_128(bridge.public_key + bridge.node_id, body, str(hour).encode())


def test_request_layout(bridge: BridgeIdentity) -> None:
    client = client_for(bridge, pad_length=100)
    request = client.data_to_send()
    key = bridge.public_key + bridge.node_id
    assert len(request) == 32 + 100 + 16 + 16
    assert request[-32:-16] == hmac_sha256_128(key, request[:32])
    assert request[-16:] == hmac_sha256_128(key, request[:-16], str(epoch_hour(NOW)).encode())


def test_padding_stays_within_the_specified_bounds(bridge: BridgeIdentity) -> None:
    for _ in range(50):
        padding = len(client_for(bridge).data_to_send()) - 64
        assert CLIENT_MIN_PAD_LENGTH <= padding <= CLIENT_MAX_PAD_LENGTH
    assert (CLIENT_MIN_PAD_LENGTH, CLIENT_MAX_PAD_LENGTH) == (85, 8128)
    for bad in (CLIENT_MIN_PAD_LENGTH - 1, CLIENT_MAX_PAD_LENGTH + 1):
        with pytest.raises(ValueError):
            client_for(bridge, pad_length=bad)


def test_handshake_completes_and_data_flows_both_ways(bridge: BridgeIdentity) -> None:
    client = client_for(bridge)
    hello, server = hello_for(client, bridge)
    client.receive_data(hello + server.send(b"welcome"))
    completed = client.next_event()
    assert isinstance(completed, HandshakeCompleted)
    session = Obfs4Session.for_client(completed.key_material)
    session.receive_data(completed.trailing)
    assert session.next_event() == DataReceived(b"welcome")
    server.receive_data(session.send(b"thanks"))
    assert server.next_event() == DataReceived(b"thanks")


def test_hello_arriving_byte_by_byte(bridge: BridgeIdentity) -> None:
    client = client_for(bridge)
    hello, _ = hello_for(client, bridge)
    for byte in hello[:-1]:
        client.receive_data(bytes([byte]))
        assert client.next_event() is NEED_DATA
    client.receive_data(hello[-1:])
    assert isinstance(client.next_event(), HandshakeCompleted)


def test_wrong_auth_is_an_auth_failure(bridge: BridgeIdentity) -> None:
    client = client_for(bridge)
    hello, _ = hello_for(client, bridge, corrupt_auth=True)
    client.receive_data(hello)
    with pytest.raises(ServerAuthFailed):
        client.next_event()


@pytest.mark.parametrize("skew", [-1, 1])
def test_adjacent_epoch_hours_are_accepted(bridge: BridgeIdentity, skew: int) -> None:
    client = client_for(bridge)
    hello, _ = hello_for(client, bridge)
    client.receive_data(remac(hello, bridge, epoch_hour(NOW) + skew))
    assert isinstance(client.next_event(), HandshakeCompleted)


@pytest.mark.parametrize("skew", [-2, 2])
def test_distant_epoch_hours_are_rejected(bridge: BridgeIdentity, skew: int) -> None:
    client = client_for(bridge)
    hello, _ = hello_for(client, bridge)
    client.receive_data(remac(hello, bridge, epoch_hour(NOW) + skew))
    with pytest.raises(MalformedHandshake, match="MAC"):
        client.next_event()


def test_low_order_server_key_is_refused(bridge: BridgeIdentity) -> None:
    """Representative 0 maps to u = 0, whose shared secret is all zeros."""
    client = client_for(bridge)
    key = bridge.public_key + bridge.node_id
    body = bytes(32) + bytes(32) + os.urandom(50) + hmac_sha256_128(key, bytes(32))
    client.receive_data(remac(body + bytes(16), bridge, epoch_hour(NOW)))
    with pytest.raises(MalformedHandshake, match="low-order"):
        client.next_event()


def test_garbage_without_a_mark_is_refused_at_the_size_limit(bridge: BridgeIdentity) -> None:
    client = client_for(bridge)
    client.receive_data(os.urandom(MAX_HANDSHAKE_LENGTH - 1))
    assert client.next_event() is NEED_DATA
    client.receive_data(os.urandom(1))
    with pytest.raises(MalformedHandshake, match="no server mark"):
        client.next_event()


def test_hello_for_another_bridge_never_completes(bridge: BridgeIdentity) -> None:
    other = BridgeIdentity(os.urandom(20), bridge.public_key, bridge.private_key)
    client = client_for(other)
    assert impostor_hello(client.data_to_send(), bridge, now=NOW, corrupt_auth=False) is None


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
