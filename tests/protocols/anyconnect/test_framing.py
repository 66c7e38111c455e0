"""CSTP packets and config-auth documents, with known answers from the OpenConnect draft and
ocserv's own output."""

from __future__ import annotations

import pytest

from vpnwatch.protocols.anyconnect import configauth, cstp
from vpnwatch.protocols.anyconnect.configauth import ConfigAuthError, FormField


def test_cstp_packets_have_the_drafts_header() -> None:
    assert cstp.encode(cstp.PacketType.DPD_REQUEST) == b"STF\x01\x00\x00\x03\x00"
    assert cstp.encode(cstp.PacketType.DISCONNECT, b"\xb0") == b"STF\x01\x00\x01\x05\x00\xb0"
    with pytest.raises(ValueError, match="at most 65535"):
        cstp.encode(cstp.PacketType.DATA, bytes(65536))


def test_the_reader_splits_and_joins_packets() -> None:
    reader = cstp.CstpReader()
    stream = cstp.encode(cstp.PacketType.DATA, b"abc") + cstp.encode(cstp.PacketType.KEEPALIVE)
    assert reader.feed(stream[:5]) == []
    assert reader.feed(stream[5:]) == [(0, b"abc"), (7, b"")]
    with pytest.raises(cstp.CstpError, match="starts with"):
        reader.feed(b"HTTP/1.1 200 OK\r\n")


def test_the_init_document_is_openconnects() -> None:
    assert configauth.init_request("v9.01", "https://vpn.example.net/", "lab") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<config-auth client="vpn" type="init" aggregate-auth-version="2">'
        b'<version who="vpn">v9.01</version><device-id>linux-64</device-id>'
        b"<group-access>https://vpn.example.net/</group-access>"
        b"<group-select>lab</group-select></config-auth>"
    )


def test_an_answer_escapes_what_it_carries_and_echoes_the_opaque() -> None:
    opaque = b'<opaque is-for="sg"><tunnel-group>x</tunnel-group></opaque>'
    reply = configauth.auth_reply("v9.01", {"password": '<&">'}, None, opaque)
    assert b'<auth><password>&lt;&amp;"&gt;</password></auth>' in reply
    assert opaque in reply


def test_an_asa_style_form_is_read() -> None:
    message = configauth.parse_server_message(
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<config-auth client="vpn" type="auth-request" aggregate-auth-version="2">'
        b'<opaque is-for="sg"><tunnel-group>eng</tunnel-group></opaque>'
        b'<auth id="main"><message>Please enter your username and password.</message>'
        b'<error id="88" param1="" param2="">Login failed.</error>'
        b'<form><input type="text" name="username" label="Username:"></input>'
        b'<input type="password" name="password" label="Password:"></input>'
        b'<input type="hidden" name="csrf" value="42"/>'
        b'<select name="group_list" label="GROUP:"><option value="eng" selected="true">'
        b"Engineering</option></select></form></auth></config-auth>"
    )
    assert message.kind == "auth-request"
    assert message.message == "Please enter your username and password. Login failed."
    assert message.fields == (
        FormField("username", "text", "Username:"),
        FormField("password", "password", "Password:"),
        FormField("csrf", "hidden", "", "42"),
        FormField("group_list", "select", "GROUP:", options=(("eng", "Engineering"),)),
    )
    assert message.opaque is not None and b"<tunnel-group>eng</tunnel-group>" in message.opaque


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"<!DOCTYPE lol [<!ENTITY a 'aaaa'>]><config-auth/>", "DTD"),
        (b"<config-auth" + b" " * configauth.MAX_DOCUMENT + b"/>", "bytes long"),
        (b"not xml", "not XML"),
    ],
)
def test_hostile_documents_are_refused(document: bytes, words: str) -> None:
    with pytest.raises(ConfigAuthError, match=words):
        configauth.parse_server_message(document)
