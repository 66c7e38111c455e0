"""The AnyConnect session replays ocserv's captured plaintext byte for byte, and each way a server
can misbehave (derived from those captures) ends in its documented failure."""

from __future__ import annotations

import pytest

from tests.machines import drain
from tests.vectors.anyconnect import AnyConnectCapture, load_captures
from vpnwatch.protocols.anyconnect import cstp
from vpnwatch.protocols.anyconnect.session import AnyConnectSession, Login
from vpnwatch.protocols.machine import Completed, Failed, StageCompleted
from vpnwatch.result import Failure

CAPTURES = load_captures()


def replay(capture: AnyConnectCapture, *, upto: int | None = None) -> AnyConnectSession:
    """A session fed the capture's server chunks (the first ``upto``), its output checked."""
    session = AnyConnectSession(capture.login)
    session.start(0.0)
    sent = b""
    served = 0
    for side, data in capture.transcript:
        if side == "client":
            sent += data
            continue
        assert b"".join(session.data_to_send(0.0)) == sent
        sent = b""
        if upto is not None and served == upto:
            return session
        session.receive(data, 0.0)
        served += 1
    assert b"".join(session.data_to_send(0.0)) == sent
    return session


def server_chunks(capture: AnyConnectCapture) -> list[bytes]:
    return [data for side, data in capture.transcript if side == "server"]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_replay_gives_the_same_bytes_and_outcome(name: str) -> None:
    capture = CAPTURES[name]
    events = drain(replay(capture))
    stages = [event.stage for event in events if isinstance(event, StageCompleted)]
    assert tuple(stages) == capture.stages
    end = events[-1]
    if capture.failure is None:
        assert isinstance(end, Completed)
        assert end.detail == capture.detail
    else:
        assert isinstance(end, Failed)
        assert (end.failure.value, end.detail) == (capture.failure, capture.detail)


def test_the_password_login_takes_two_form_rounds_and_ends_with_a_disconnect() -> None:
    transcript = CAPTURES["password"].transcript
    client = [data for side, data in transcript if side == "client"]
    assert [chunk.split(b" ", 2)[:2] for chunk in client[:4]] == [
        [b"POST", b"/"],
        [b"POST", b"/auth"],
        [b"POST", b"/auth"],
        [b"CONNECT", b"/CSCOSSLC/tunnel"],
    ]
    assert b"<group-select>lab</group-select>" in client[0]
    assert b"<username>probe</username>" in client[1]
    assert client[-2:] == [
        cstp.encode(cstp.PacketType.DPD_REQUEST),
        cstp.encode(cstp.PacketType.DISCONNECT, cstp.USER_DISCONNECT),
    ]


def test_the_certificate_login_needs_no_form() -> None:
    client = [data for side, data in CAPTURES["certificate"].transcript if side == "client"]
    assert client[1].startswith(b"CONNECT /CSCOSSLC/tunnel ")


def _ending(capture: AnyConnectCapture, upto: int, reply: bytes) -> Failed | Completed:
    """Replay ``upto`` server chunks, then hand the session ``reply`` instead of the next."""
    session = replay(capture, upto=upto)
    session.receive(reply, 0.0)
    end = drain(session)[-1]
    assert isinstance(end, (Failed, Completed))
    return end


def _http(status: str, body: bytes = b"", *headers: str) -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _form(*inputs: str, message: str = "Say something.") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<config-auth client="vpn" type="auth-request">'
        f'<auth id="main"><message>{message}</message><form method="post" action="/auth">'
        + "".join(inputs)
        + "</form></auth></config-auth>"
    ).encode()


GROUPS = (
    '<select name="group_list" label="Group:"><option value="lab">lab</option>'
    '<option value="other">Other group</option></select>'
)


@pytest.mark.parametrize(
    ("upto", "reply", "failure", "words"),
    [
        (0, _http("401 Unauthorized"), Failure.AUTH, "refused the login: HTTP 401"),
        (0, _http("500 Internal Server Error"), Failure.PROTOCOL, "HTTP 500"),
        (0, b"SSH-2.0-OpenSSH_9.2\r\n\r\n", Failure.PROTOCOL, "HTTP is malformed"),
        (0, b"", Failure.EOF, "closed the connection during the login"),
        (0, _http("200 OK", b"<html>hello</html>"), Failure.PROTOCOL, "not <config-auth>"),
        (0, _http("200 OK", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"), Failure.PROTOCOL, "DTD"),
        (0, _http("200 OK", b"<config-auth"), Failure.PROTOCOL, "not XML"),
        (0, _http("302 Found", b"", "Location: https://elsewhere.invalid/"), Failure.PROTOCOL,
         "another server"),
        (0, _http("200 OK", _form('<input type="text" name="answer" label="OTP:"/>')),
         Failure.AUTH, "asks for 'OTP'"),
        (0, _http("200 OK", _form(GROUPS.replace("lab", "sales"))), Failure.AUTH,
         "does not offer group 'lab'"),
        (0, _http("200 OK", b'<config-auth type="complete"><auth id="success"/></config-auth>'),
         Failure.PROTOCOL, "without a session cookie"),
        (0, _http("200 OK", b'<config-auth type="auth-reply"><auth id="failure">'
                  b"<message>Go away.</message></auth></config-auth>"),
         Failure.AUTH, "Go away."),
        (3, _http("401 Cookie is not acceptable"), Failure.AUTH, "refused the session cookie"),
        (3, _http("503 Service Unavailable"), Failure.PROTOCOL, "answered CONNECT HTTP 503"),
        (4, b"XXXX\x00\x00\x04\x00", Failure.PROTOCOL, "tunnel packet starts with"),
        (4, cstp.encode(cstp.PacketType.TERMINATE), Failure.PROTOCOL, "ended the tunnel"),
        (4, b"", Failure.EOF, "to the DPD request"),
    ],
)  # fmt: skip
def test_a_misbehaving_server_gets_its_failure(
    upto: int, reply: bytes, failure: Failure, words: str
) -> None:
    end = _ending(CAPTURES["password"], upto, reply)
    assert isinstance(end, Failed)
    assert end.failure == failure
    assert words in end.detail


def test_without_a_group_a_list_of_several_is_not_guessed() -> None:
    capture = CAPTURES["password"]
    login = Login(**{**_fields(capture.login), "group": None})
    session = AnyConnectSession(login)
    session.start(0.0)
    session.receive(server_chunks(capture)[0], 0.0)
    [end] = drain(session)
    assert isinstance(end, Failed)
    assert (end.failure, end.detail) == (
        Failure.AUTH,
        "the server asks to choose a group (lab, other)",
    )


def _fields(login: Login) -> dict[str, object]:
    return {name: getattr(login, name) for name in Login.__dataclass_fields__}


def test_a_same_server_redirect_is_followed() -> None:
    capture = CAPTURES["password"]
    session = replay(capture, upto=0)
    drain(session)
    location = f"https://{capture.login.authority}/elsewhere"
    session.receive(_http("302 Found", b"", f"Location: {location}"), 0.0)
    assert drain(session) == []
    [request] = session.data_to_send(0.0)
    assert request.startswith(b"POST /elsewhere HTTP/1.1\r\n")


def test_the_servers_dpd_request_is_answered_while_ours_waits() -> None:
    session = replay(CAPTURES["password"], upto=4)
    drain(session)
    session.receive(cstp.encode(cstp.PacketType.DPD_REQUEST, b"ping"), 0.0)
    assert session.data_to_send(0.0) == [cstp.encode(cstp.PacketType.DPD_RESPONSE, b"ping")]
    assert drain(session) == []
    assert session.timed_out() == Failed(
        Failure.TIMEOUT, "no answer to the DPD request in the tunnel"
    )


def test_a_packet_split_across_reads_is_reassembled() -> None:
    session = replay(CAPTURES["password"], upto=4)
    response = cstp.encode(cstp.PacketType.DPD_RESPONSE)
    for byte in response:
        session.receive(bytes([byte]), 0.0)
    assert isinstance(drain(session)[-1], Completed)


def test_nothing_is_read_after_the_end() -> None:
    session = replay(CAPTURES["wrong-password"])
    drain(session)
    session.receive(b"anything", 0.0)
    assert drain(session) == [] and session.data_to_send(0.0) == []
