"""AnyConnect's parsers, fed damaged copies of what the real ocserv sent: a result or a clean end.

* ``AnyConnectSession.receive`` never raises for what arrives: each server chunk of a capture,
  damaged and cut anywhere, ends in ``Completed`` or ``Failed`` (or waits), and every detail is
  one printable line of bounded length, whatever the server wrote into its messages;
* ``parse_server_message`` raises only ``ConfigAuthError``;
* an AnyConnect profile gives targets or one ConfigError line.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import FUZZ, FUZZ_SLOW, chunked, count, mutated, no_hang
from tests.vectors.anyconnect import load_captures
from vpnwatch.errors import ConfigError
from vpnwatch.importers import load_file
from vpnwatch.protocols.anyconnect import configauth
from vpnwatch.protocols.anyconnect.session import MAX_DETAIL, AnyConnectSession
from vpnwatch.protocols.machine import Completed, Failed, StageCompleted

CAPTURES = load_captures()
SERVER_CHUNKS = [
    data for capture in CAPTURES.values() for side, data in capture.transcript if side == "server"
]
DOCUMENTS = [chunk.partition(b"\r\n\r\n")[2] for chunk in SERVER_CHUNKS if b"<config-auth" in chunk]
PROFILE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<AnyConnectProfile xmlns="http://schemas.xmlsoap.org/encoding/">\n'
    b"<ServerList>\n"
    b"<HostEntry><HostName>Frankfurt</HostName><HostAddress>198.18.0.2:4443</HostAddress>"
    b"<UserGroup>eng</UserGroup></HostEntry>\n"
    b"<HostEntry><HostName>IKE</HostName><HostAddress>198.18.0.6</HostAddress>"
    b"<PrimaryProtocol>IPsec</PrimaryProtocol></HostEntry>\n"
    b"</ServerList></AnyConnectProfile>\n"
)


@FUZZ_SLOW
@given(data=st.data())
def test_the_session_ends_cleanly_whatever_the_server_sends(data: st.DataObject) -> None:
    capture = data.draw(st.sampled_from(sorted(CAPTURES)))
    session = AnyConnectSession(CAPTURES[capture].login)
    session.start(0.0)
    server = [chunk for side, chunk in CAPTURES[capture].transcript if side == "server"]
    cut = data.draw(st.integers(0, len(server) - 1))
    damaged = data.draw(mutated([server[cut], *SERVER_CHUNKS], max_size=70_000))
    pieces = data.draw(chunked(damaged))
    count("anyconnect.session", len(pieces))
    with no_hang():
        for chunk in server[:cut]:
            session.receive(chunk, 0.0)
        for piece in pieces:
            session.receive(piece, 0.0)
            session.data_to_send(0.0)
    while (event := session.next_event()) is not None:
        assert isinstance(event, (StageCompleted, Completed, Failed))
        if isinstance(event, Failed):
            assert event.detail.isprintable() and len(event.detail) <= MAX_DETAIL


@FUZZ
@given(document=mutated(DOCUMENTS, max_size=70_000))
def test_config_auth_parses_or_raises_its_error(document: bytes) -> None:
    count("anyconnect.config_auth")
    with no_hang(), contextlib.suppress(configauth.ConfigAuthError):
        configauth.parse_server_message(document)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-anyconnect")


def test_profiles_give_targets_or_one_line(directory: Path) -> None:
    @FUZZ_SLOW
    @given(data=mutated([PROFILE, PROFILE.replace(b"\n", b"\r\n")], max_size=100_000))
    def fuzz(data: bytes) -> None:
        count("importer.anyconnect_profile")
        path = directory / "fuzz.xml"
        path.write_bytes(data)
        with no_hang():
            try:
                load_file(path)
            except ConfigError as exc:
                assert "\n" not in str(exc)

    fuzz()
