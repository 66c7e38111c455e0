"""The plaintext spoken inside TLS: key-method 2 messages and control-channel commands.

After the TLS handshake the client sends one key-method 2 message::

    0:u32 | 2:u8 | pre-master:48 | random1:32 | random2:32
    | options | username | password | peer-info

where each string is a u16 length (counting its trailing NUL) then the string and a NUL; a length
of 0 writes no bytes at all (no username, for instance). The server answers with the same layout
minus the pre-master secret. Then come NUL-terminated commands: PUSH_REQUEST from us, PUSH_REPLY,
AUTH_FAILED or AUTH_PENDING from the server.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

KEY_METHOD_2 = 2
CLIENT_KEY_SOURCE_SIZE = 48 + 32 + 32
SERVER_KEY_SOURCE_SIZE = 32 + 32
_KEY_METHOD_MASK = 0x0F
_PREFIX = struct.Struct("!IB")
_MAX_OPTIONS = 1024  # OpenVPN's TLS_OPTIONS_LEN
PUSH_REQUEST = b"PUSH_REQUEST\x00"
_MAX_DETAIL = 120


class KeyMethodError(ValueError):
    """The server's key-method message is malformed."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password for ``auth-user-pass`` servers. The repr hides the password."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack("!H", 0)
    raw = text.encode() + b"\x00"
    if len(raw) > 0xFFFF:
        raise ValueError("string is too long for a key-method field")
    return struct.pack("!H", len(raw)) + raw


def client_key_method(
    key_source: bytes, options: str, credentials: Credentials | None, peer_info: str
) -> bytes:
    """The client's key-method 2 message."""
    if len(key_source) != CLIENT_KEY_SOURCE_SIZE:
        raise ValueError(f"the client key source is {CLIENT_KEY_SOURCE_SIZE} random bytes")
    return b"".join(
        [
            _PREFIX.pack(0, KEY_METHOD_2),
            key_source,
            _string(options),
            _string(credentials.username if credentials else None),
            _string(credentials.password if credentials else None),
            _string(peer_info),
        ]
    )


def peer_info(*, version: str, ciphers: str, monitor: str) -> str:
    """What we tell the server about ourselves: enough for cipher negotiation to succeed."""
    lines = [
        f"IV_VER={version}",
        "IV_PLAT=linux",
        "IV_PROTO=2",  # data channel v2 (peer-id); nothing that changes the control channel
        "IV_NCP=2",
        f"IV_CIPHERS={ciphers}",
        f"IV_GUI_VER={monitor}",
    ]
    return "".join(f"{line}\n" for line in lines)


def parse_server_key_method(plaintext: bytes) -> tuple[str, int] | None:
    """The server's options string and the bytes its key-method message used.

    Returns None while the message is incomplete, raises KeyMethodError if it is malformed. Of
    the fields after the options, only the lengths matter: servers send them empty.
    """
    offset = _PREFIX.size + SERVER_KEY_SOURCE_SIZE
    if len(plaintext) < _PREFIX.size:
        return None
    zero, method = _PREFIX.unpack_from(plaintext)
    if zero != 0 or method & _KEY_METHOD_MASK != KEY_METHOD_2:
        raise KeyMethodError("server's reply is not a key-method 2 message")
    fields = []
    for _ in range(4):  # options, username, password, peer-info
        if len(plaintext) < offset + 2:
            return None
        (length,) = struct.unpack_from("!H", plaintext, offset)
        if len(plaintext) < offset + 2 + length:
            return None
        fields.append(plaintext[offset + 2 : offset + 2 + length])
        offset += 2 + length
    options = fields[0]
    if not options or options[-1] != 0 or len(options) > _MAX_OPTIONS:
        raise KeyMethodError("server's options string is not a NUL-terminated string")
    return options[:-1].decode("ascii", "replace"), offset


def option_value(options: str, name: str) -> str | None:
    """The argument of ``name`` in an options string (``V4,dev-type tun,cipher AES-256-GCM,…``)."""
    for option in options.split(","):
        key, _, value = option.strip().partition(" ")
        if key == name and value:
            return value.strip()
    return None


def split_commands(plaintext: bytes) -> tuple[list[str], bytes]:
    """Complete NUL-terminated commands in ``plaintext``, and the incomplete rest."""
    *complete, rest = plaintext.split(b"\x00")
    commands = [raw.decode("utf-8", "replace").strip() for raw in complete]
    return [command for command in commands if command], rest


def printable(text: str) -> str:
    """A server-supplied string made safe for one log line."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean if len(clean) <= _MAX_DETAIL else clean[: _MAX_DETAIL - 1] + "…"
