"""simple-obfs' disguises as layers: ``obfs=http`` and ``obfs=tls`` (SIP003 plugin options).

Neither proves anything about the server (there are no keys in them); they only have to look
like what obfs-server expects, so that it strips them and hands the Shadowsocks stream on. The
formats are simple-obfs' own (``src/obfs_http.c``, ``src/obfs_tls.c``):

- ``http``: the first payload is the body of a ``GET`` with ``Upgrade: websocket`` and a
  ``Content-Length``; the server answers ``HTTP/1.1 101`` and headers; raw bytes follow both ways.
- ``tls``: the first payload rides in a ClientHello's session-ticket extension; the server
  answers a ServerHello echoing our session id, a ChangeCipherSpec and a handshake record
  holding its first payload; then both ways wrap payload in application-data records.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Callable

from vpnwatch.protocols.layers.stack import Layer, LayerFailed, starts_like
from vpnwatch.result import Failure

#: The longest HTTP head read before the answer counts as not obfs-server's.
MAX_HEAD = 16384
#: simple-obfs refuses application-data records longer than this.
MAX_RECORD = 16384

# The ClientHello simple-obfs sends, in pieces around the parts that vary.
_CIPHER_SUITES = bytes.fromhex(
    "c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00a"
    "c0140039c009c0130033009d009c003d003c0035002f00ff"
)
_OTHER_EXTENSIONS = bytes.fromhex(
    "000b000403010002"  # ec_point_formats
    "000a000a0008001d001700190018"  # supported groups
    "000d0020001e060106020603050105020503040104020403030103020303020102020203"  # sig algs
    "00160000"  # encrypt_then_mac
    "00170000"  # extended_master_secret
)
_SERVER_HELLO_LENGTH = 96
_CHANGE_CIPHER_SPEC = bytes.fromhex("140303000101")
_RECORD_HEADER = 5
_APPLICATION_DATA = b"\x17\x03\x03"


class ObfsHttpLayer(Layer):
    """simple-obfs ``obfs=http`` towards ``host`` (the ``obfs-host`` option)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        uri: str = "/",
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self._authority = host if port == 80 else f"{host}:{port}"
        self._uri = uri
        self._random = random_bytes
        self._sent_head = False
        self._head_seen = False
        self._buffer = bytearray()
        self.ready = True

    def _wrap(self, payload: bytes) -> None:
        if self._sent_head:
            self._down(payload)
            return
        self._sent_head = True
        key = base64.b64encode(self._random(16)).decode()
        self._down(
            (
                f"GET {self._uri} HTTP/1.1\r\nHost: {self._authority}\r\n"
                "User-Agent: curl/7.88.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nContent-Length: {len(payload)}\r\n\r\n"
            ).encode()
            + payload
        )

    def receive(self, data: bytes) -> bytes:
        if self._head_seen:
            return data
        self._buffer += data
        head, sep, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        if not starts_like(self._buffer, b"HTTP/1.1 "):
            raise LayerFailed(Failure.PROTOCOL, "the answer is not obfs-server's HTTP disguise")
        if not sep:
            if len(self._buffer) > MAX_HEAD:
                raise LayerFailed(Failure.PROTOCOL, "the HTTP disguise's head never ends")
            return b""
        if not head.startswith(b"HTTP/1.1 101"):
            status = head.partition(b"\r\n")[0][:40].decode("ascii", "replace")
            raise LayerFailed(Failure.PROTOCOL, f"the server answered {status!r}, not 101")
        self._head_seen = True
        self._buffer.clear()
        return rest


class ObfsTlsLayer(Layer):
    """simple-obfs ``obfs=tls`` towards ``host`` (the ``obfs-host`` option, sent as SNI).

    ``unix_time`` and ``random_bytes`` fill the hello's random and session id, as a real client's
    clock and RNG would, so a captured exchange replays.
    """

    def __init__(
        self,
        host: str,
        *,
        unix_time: float,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self._host = host.encode("idna")
        self._time = int(unix_time) & 0xFFFFFFFF
        self._random = random_bytes
        self._session_id = b""
        self._sent_hello = False
        self._buffer = bytearray()
        self._hello_seen = False
        self._record_left = 0
        self.ready = True

    def _wrap(self, payload: bytes) -> None:
        if not self._sent_hello:
            self._sent_hello = True
            self._down(self._client_hello(payload))
            return
        for start in range(0, len(payload), MAX_RECORD):
            piece = payload[start : start + MAX_RECORD]
            self._down(_APPLICATION_DATA + struct.pack("!H", len(piece)) + piece)

    def _client_hello(self, ticket: bytes) -> bytes:
        random = struct.pack("!I", self._time) + self._random(28)
        self._session_id = self._random(32)
        sni = struct.pack("!HHHBH", 0, len(self._host) + 5, len(self._host) + 3, 0, len(self._host))
        extensions = (
            struct.pack("!HH", 0x0023, len(ticket)) + ticket + sni + self._host + _OTHER_EXTENSIONS
        )
        body = (
            b"\x03\x03" + random + b"\x20" + self._session_id
            + struct.pack("!H", len(_CIPHER_SUITES)) + _CIPHER_SUITES + b"\x01\x00"
            + struct.pack("!H", len(extensions)) + extensions
        )  # fmt: skip
        handshake = b"\x01" + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake

    def receive(self, data: bytes) -> bytes:
        self._buffer += data
        if not self._hello_seen:
            prefix = _SERVER_HELLO_LENGTH + len(_CHANGE_CIPHER_SPEC) + _RECORD_HEADER
            if not starts_like(self._buffer, b"\x16"):
                raise LayerFailed(Failure.PROTOCOL, "the answer is not obfs-server's TLS disguise")
            if len(self._buffer) < prefix:
                return b""
            hello = bytes(self._buffer[:_SERVER_HELLO_LENGTH])
            if hello[5] != 2 or hello[44:76] != self._session_id:
                raise LayerFailed(
                    Failure.PROTOCOL,
                    "the ServerHello does not echo our session id: not obfs-server",
                )
            ccs = bytes(self._buffer[_SERVER_HELLO_LENGTH : _SERVER_HELLO_LENGTH + 6])
            if ccs != _CHANGE_CIPHER_SPEC or self._buffer[prefix - 5] != 0x16:
                raise LayerFailed(Failure.PROTOCOL, "the TLS disguise's records are out of order")
            self._record_left = struct.unpack("!H", self._buffer[prefix - 2 : prefix])[0]
            del self._buffer[:prefix]
            self._hello_seen = True
        return self._records()

    def _records(self) -> bytes:
        payload = []
        while self._buffer:
            if self._record_left:
                piece = bytes(self._buffer[: self._record_left])
                del self._buffer[: len(piece)]
                self._record_left -= len(piece)
                payload.append(piece)
                continue
            if len(self._buffer) < _RECORD_HEADER:
                break
            if bytes(self._buffer[:3]) != _APPLICATION_DATA:
                raise LayerFailed(Failure.PROTOCOL, "a record of the TLS disguise is not app data")
            length = struct.unpack("!H", self._buffer[3:5])[0]
            if length > MAX_RECORD:
                raise LayerFailed(Failure.PROTOCOL, f"a disguise record of {length} bytes")
            del self._buffer[:_RECORD_HEADER]
            self._record_left = length
        return b"".join(payload)
