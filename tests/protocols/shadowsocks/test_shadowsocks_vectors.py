"""The Shadowsocks client replays its captured exchanges with the real ss-server byte for byte."""

from __future__ import annotations

import pytest

from tests.machines import drain
from tests.vectors.shadowsocks import ShadowsocksCapture, captures
from vpnwatch.protocols.machine import Completed, Failed, StageCompleted
from vpnwatch.result import Failure

NAMES = sorted(captures())


def replay(capture: ShadowsocksCapture, server: bytes, *, step: int = 0) -> list[object]:
    client = capture.client()
    client.start(0.0)
    sent = b"".join(client.data_to_send(0.0))
    events: list[object] = []
    chunks = [server[i : i + step] for i in range(0, len(server), step)] if step else [server]
    for chunk in chunks:
        client.receive(chunk, 1.0)
        sent += b"".join(client.data_to_send(1.0))
        events += drain(client)
    assert sent == capture.sent("client")
    return events


@pytest.mark.parametrize("name", NAMES)
def test_the_client_sends_what_it_sent_and_accepts_the_server(name: str) -> None:
    capture = captures()[name]
    events = replay(capture, capture.sent("server"))
    assert isinstance(events[-1], Completed), events
    assert StageCompleted("data") in events


@pytest.mark.parametrize("name", ["chacha20-ietf-poly1305", "obfs-tls", "v2ray-ws"])
def test_the_answer_opens_one_byte_at_a_time(name: str) -> None:
    capture = captures()[name]
    events = replay(capture, capture.sent("server"), step=1)
    assert isinstance(events[-1], Completed), events


@pytest.mark.parametrize("name", ["aes-128-gcm", "obfs-http"])
def test_a_tampered_answer_fails_authentication(name: str) -> None:
    capture = captures()[name]
    server = bytearray(capture.sent("server"))
    server[-1] ^= 0x01  # the last tag
    events = replay(capture, bytes(server))
    assert events[-1] == Failed(Failure.AUTH, events[-1].detail)  # type: ignore[union-attr]


def test_a_close_without_an_answer_is_eof() -> None:
    capture = captures()["aes-256-gcm"]
    client = capture.client()
    client.start(0.0)
    client.receive(b"", 1.0)
    [event] = drain(client)
    assert isinstance(event, Failed) and event.failure == Failure.EOF
    assert "wrong password" in event.detail


def test_silence_times_out_in_data() -> None:
    client = captures()["chacha20-ietf-poly1305"].client()
    client.start(0.0)
    assert client.timed_out().failure == Failure.TIMEOUT
    assert client.stages == ("data",)


def test_the_plugins_stages_come_first() -> None:
    assert captures()["v2ray-ws"].client().stages == ("websocket", "data")
    assert captures()["obfs-tls"].client().stages == ("data",)


def test_a_web_servers_answer_is_protocol_not_auth() -> None:
    """What a v2ray-plugin server's web server says to a client that left the plugin out."""
    client = captures()["chacha20-ietf-poly1305"].client()
    client.start(0.0)
    client.receive(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n400 Bad Request", 1.0
    )
    [event] = drain(client)
    assert isinstance(event, Failed) and event.failure == Failure.PROTOCOL
    assert "HTTP/1.1 400 Bad Request" in event.detail
