"""The proxy layers against fixed values: RFC 6455's example, simple-obfs' and Mux.Cool's frames."""

from __future__ import annotations

import struct

import pytest

from vpnwatch.protocols.layers.mux import MuxCoolLayer
from vpnwatch.protocols.layers.obfs import ObfsHttpLayer, ObfsTlsLayer
from vpnwatch.protocols.layers.stack import LayerFailed, LayerStack
from vpnwatch.protocols.layers.websocket import WebSocketLayer, accept_key
from vpnwatch.protocols.machine import StageCompleted
from vpnwatch.result import Failure


def fixed(length: int) -> bytes:
    return bytes(range(length))


def test_accept_key_is_rfc_6455s_example() -> None:
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def upgraded(layer: WebSocketLayer, key: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: "
        + accept_key(key)
        + b"\r\n\r\n"
    )


def test_websocket_holds_payload_until_the_upgrade_and_masks_it() -> None:
    layer = WebSocketLayer("cdn.example", "/ws", random_bytes=fixed)
    stack = LayerStack([layer])
    stack.open()
    request = stack.data_to_send()
    assert request.startswith(b"GET /ws HTTP/1.1\r\nHost: cdn.example\r\n")
    stack.send(b"payload")
    assert stack.data_to_send() == b""
    key = request.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
    assert stack.receive(upgraded(layer, key) + b"\x82\x03abc") == b"abc"
    assert stack.events() == [StageCompleted("websocket")]
    frame = stack.data_to_send()
    mask = frame[2:6]
    assert (
        frame[:2] == b"\x82\x87"
        and bytes(b ^ mask[i % 4] for i, b in enumerate(frame[6:])) == b"payload"
    )


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: x\r\n\r\n",
        b"\x00garbage",
    ],
)
def test_websocket_refuses_what_is_not_the_upgrade(answer: bytes) -> None:
    layer = WebSocketLayer("cdn.example", random_bytes=fixed)
    layer.open()
    with pytest.raises(LayerFailed) as failed:
        layer.receive(answer)
    assert failed.value.failure == Failure.PROTOCOL


def test_obfs_http_sends_the_first_payload_as_a_body_and_strips_the_answer_head() -> None:
    layer = ObfsHttpLayer("www.example", 8080, random_bytes=fixed)
    layer.send(b"first")
    layer.send(b"second")
    out = layer.data_to_send()
    assert out.startswith(b"GET / HTTP/1.1\r\nHost: www.example:8080\r\n")
    assert out.endswith(b"Content-Length: 5\r\n\r\nfirstsecond")
    assert layer.receive(b"HTTP/1.1 101 Switching Protocols\r\nServer: nginx\r\n") == b""
    assert layer.receive(b"\r\nabc") == b"abc"
    assert layer.receive(b"def") == b"def"


def test_obfs_tls_hides_the_first_payload_in_a_session_ticket() -> None:
    layer = ObfsTlsLayer("www.example", unix_time=0x01020304, random_bytes=fixed)
    layer.send(b"ticket")
    hello = layer.data_to_send()
    assert hello[:3] == b"\x16\x03\x01" and hello[5] == 1 and hello[11:15] == b"\x01\x02\x03\x04"
    assert b"\x00\x23\x00\x06ticket" in hello and b"www.example" in hello
    assert struct.unpack("!H", hello[3:5])[0] == len(hello) - 5
    layer.send(b"more")
    assert layer.data_to_send() == b"\x17\x03\x03\x00\x04more"


def test_obfs_tls_needs_its_session_id_echoed() -> None:
    layer = ObfsTlsLayer("www.example", unix_time=0, random_bytes=fixed)
    layer.send(b"x")
    server_hello = b"\x16\x03\x01\x00\x5b\x02" + bytes(90)  # a session id of zeros
    with pytest.raises(LayerFailed, match="session id"):
        layer.receive(server_hello + bytes.fromhex("140303000101") + b"\x16\x03\x03\x00\x00")


def test_mux_cool_opens_one_sub_connection_and_reads_its_frames() -> None:
    layer = MuxCoolLayer()
    layer.send(b"hi")
    new = layer.data_to_send()
    assert new[:2] == struct.pack("!H", len(new) - 2 - 4) and new[2:7] == b"\x00\x01\x01\x01\x01"
    assert new.endswith(b"\x00\x02hi")
    keep = b"\x00\x04\x00\x01\x02\x01" + b"\x00\x03abc"
    other = b"\x00\x04\x00\x07\x02\x01" + b"\x00\x01z"  # another session: not ours
    end = b"\x00\x04\x00\x01\x03\x00"
    assert layer.receive(keep[:5]) == b""
    assert layer.receive(keep[5:] + other + end) == b"abc"
    assert layer.ended  # the stream ended: the answer is all there will be
