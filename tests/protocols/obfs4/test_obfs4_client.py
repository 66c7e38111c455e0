"""The obfs4 probe's machine on the common contract, replaying exchanges with the real obfs4proxy.

Same inputs as the capture, same bytes out: and the real server's bytes complete every stage.
Failures come from the real server's bytes changed by the test, never from a server of our own.
"""

from __future__ import annotations

import os

import pytest

from tests.machines import drain
from tests.vectors.obfs4 import Obfs4Capture, captures
from vpnwatch.protocols.machine import (
    Completed,
    Event,
    Failed,
    LocalProtocolError,
    StageCompleted,
)
from vpnwatch.protocols.obfs4.client import Obfs4Client
from vpnwatch.protocols.obfs4.echo import ECHO_LENGTH
from vpnwatch.result import Failure


def started(capture: Obfs4Capture, *, echo_draw: bytes | None = None) -> Obfs4Client:
    client = capture.client(echo_draw=echo_draw)
    client.start(0.0)
    assert client.data_to_send(0.0) == [capture.request]
    return client


def fails(client: Obfs4Client, data: bytes, failure: Failure) -> Failed:
    client.receive(data, 1.0)
    [last] = drain(client)
    assert isinstance(last, Failed) and last.failure is failure, last
    assert client.finished
    client.receive(os.urandom(100), 2.0)  # finished: whatever follows is ignored
    assert drain(client) == [] and client.data_to_send(2.0) == []
    return last


@pytest.mark.parametrize("name", sorted(captures()))
def test_replay_sends_the_recorded_bytes_and_completes(name: str) -> None:
    capture = captures()[name]
    client = capture.client()
    assert client.stages == (("handshake", "data") if capture.echo else ("handshake",))
    client.start(0.0)
    events: list[Event] = []
    for now, (side, data) in enumerate(capture.transcript):
        if side == "client":
            assert b"".join(client.data_to_send(float(now))) == data
        else:
            assert not client.finished
            client.receive(data, float(now))
        events += drain(client)
    assert client.finished and client.data_to_send(99.0) == []
    if capture.echo:
        detail = f"server AUTH verified; {ECHO_LENGTH} bytes echoed through the session"
        stages = [StageCompleted("handshake"), StageCompleted("data")]
    else:
        detail, stages = "server AUTH verified", [StageCompleted("handshake")]
    assert events == [*stages, Completed(detail)]


def test_handshake_completes_only_with_the_last_byte_of_the_hello() -> None:
    capture = captures()["handshake"]
    client = started(capture)
    hello = capture.hello.raw
    for byte in hello[:-1]:
        client.receive(bytes([byte]), 1.0)
        assert client.next_event() is None
    client.receive(hello[-1:], 2.0)
    assert drain(client) == [StageCompleted("handshake"), Completed("server AUTH verified")]


def test_real_hello_with_auth_changed_fails_auth() -> None:
    capture = captures()["handshake"]
    failed = fails(started(capture), capture.hello.with_auth_flipped(), Failure.AUTH)
    assert "AUTH" in failed.detail


def test_real_hello_with_mac_changed_is_a_protocol_failure() -> None:
    capture = captures()["handshake"]
    failed = fails(started(capture), capture.hello.with_mac_flipped(), Failure.PROTOCOL)
    assert "MAC" in failed.detail


def test_close_before_the_hello_is_eof() -> None:
    capture = captures()["handshake"]
    client = started(capture)
    client.receive(capture.hello.raw[:100], 1.0)
    assert fails(client, b"", Failure.EOF).detail == "the bridge closed the connection"


def test_echo_that_differs_is_a_protocol_failure() -> None:
    """The real server echoes what the capture sent; this client sent other bytes."""
    capture = captures()["echo"]
    _, (_, hello), (_, echo), (_, echoed) = capture.transcript
    client = started(capture, echo_draw=os.urandom(ECHO_LENGTH))
    client.receive(hello, 1.0)
    assert drain(client) == [StageCompleted("handshake")]
    assert b"".join(client.data_to_send(1.0)) != echo
    assert "differ" in fails(client, echoed, Failure.PROTOCOL).detail


def handshaken(capture: Obfs4Capture) -> Obfs4Client:
    """A client of the echo capture past its handshake, its echo sent."""
    client = started(capture)
    client.receive(capture.transcript[1][1], 1.0)
    assert drain(client) == [StageCompleted("handshake")]
    assert b"".join(client.data_to_send(1.0)) == capture.transcript[2][1]
    return client


def test_tampered_echo_frame_is_a_protocol_failure() -> None:
    capture = captures()["echo"]
    client = handshaken(capture)
    echoed = bytearray(capture.transcript[3][1])
    echoed[-1] ^= 1
    assert "authentication" in fails(client, bytes(echoed), Failure.PROTOCOL).detail


def test_close_after_the_handshake_is_eof_at_data() -> None:
    fails(handshaken(captures()["echo"]), b"", Failure.EOF)


def test_silence_is_a_timeout_and_there_is_no_timer() -> None:
    client = started(captures()["handshake"])
    assert client.timer() is None
    assert client.timed_out().failure is Failure.TIMEOUT


def test_starting_twice_is_the_callers_bug() -> None:
    client = started(captures()["handshake"])
    with pytest.raises(LocalProtocolError):
        client.start(1.0)
