"""WebSocket (RFC 6455) as a layer: v2ray-plugin's ``mode=websocket`` carries Shadowsocks in it.

The client sends the upgrade request, waits for ``101`` whose ``Sec-WebSocket-Accept`` answers
the key it sent (the ``websocket`` stage: a web server that is not the plugin does not compute
it), then carries payload in masked binary frames and unwraps the server's unmasked ones.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable

from vpnwatch.protocols.layers.stack import Layer, LayerFailed, starts_like
from vpnwatch.result import Failure

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
#: The longest upgrade answer read before it counts as not HTTP at all.
MAX_HEAD = 16384
#: The largest frame accepted from the server: v2ray writes far smaller ones.
MAX_FRAME = 1 << 20


def accept_key(key: bytes) -> bytes:
    """What the server must answer to ``key`` (the base64 text of the client's nonce)."""
    digest = hashlib.sha1(key + GUID).digest()  # noqa: S324 - RFC 6455 fixes it
    return base64.b64encode(digest)


class WebSocketLayer(Layer):
    """The client end of one WebSocket to ``host`` at ``path``."""

    stages = ("websocket",)

    def __init__(
        self, host: str, path: str = "/", *, random_bytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        super().__init__()
        self._host = host
        self._path = path if path.startswith("/") else f"/{path}"
        self._random = random_bytes
        self._key = base64.b64encode(random_bytes(16))
        self._buffer = bytearray()

    def open(self) -> None:
        self._down(
            b"GET " + self._path.encode() + b" HTTP/1.1\r\n"
            b"Host: " + self._host.encode("idna") + b"\r\n"
            b"User-Agent: Go-http-client/1.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + self._key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def receive(self, data: bytes) -> bytes:
        self._buffer += data
        if not self.ready and not self._upgraded():
            return b""
        return self._frames()

    def _upgraded(self) -> bool:
        head, sep, _ = bytes(self._buffer).partition(b"\r\n\r\n")
        if not sep:
            if len(self._buffer) > MAX_HEAD or not starts_like(self._buffer, b"HTTP/1."):
                raise LayerFailed(
                    Failure.PROTOCOL, "the answer to the WebSocket upgrade is not HTTP"
                )
            return False
        del self._buffer[: len(head) + 4]
        status, *lines = head.split(b"\r\n")
        words = status.split(b" ", 2)
        if len(words) < 2 or not words[0].startswith(b"HTTP/1."):
            raise LayerFailed(Failure.PROTOCOL, "the answer to the WebSocket upgrade is not HTTP")
        if words[1] != b"101":
            code = words[1][:3].decode("ascii", "replace")
            raise LayerFailed(
                Failure.PROTOCOL, f"the server answered the WebSocket upgrade with HTTP {code}"
            )
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in lines)
        }
        if headers.get(b"sec-websocket-accept") != accept_key(self._key):
            raise LayerFailed(
                Failure.PROTOCOL, "the WebSocket upgrade's accept key does not answer ours"
            )
        self._become_ready("websocket")
        return True

    def _frames(self) -> bytes:
        payload = []
        while (frame := self._next_frame()) is not None:
            opcode, body = frame
            if opcode in (OP_BINARY, OP_TEXT, OP_CONTINUATION):
                payload.append(body)
            elif opcode == OP_PING:
                self._frame(OP_PONG, body)
            elif opcode == OP_CLOSE:
                self.ended = True
        return b"".join(payload)

    def _next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        opcode, masked, length, offset = buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, offset = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, offset = int.from_bytes(buf[2:10], "big"), 10
        if length > MAX_FRAME:
            raise LayerFailed(Failure.PROTOCOL, f"a WebSocket frame of {length} bytes")
        mask = b""
        if masked:  # servers must not mask; tolerate it as browsers do not
            mask, offset = bytes(buf[offset : offset + 4]), offset + 4
        if len(buf) < offset + length:
            return None
        body = bytes(buf[offset : offset + length])
        del buf[: offset + length]
        if mask:
            body = _xor(body, mask)
        return opcode, body

    def _wrap(self, payload: bytes) -> None:
        self._frame(OP_BINARY, payload)

    def _frame(self, opcode: int, body: bytes) -> None:
        length = len(body)
        if length < 126:
            head = bytes([0x80 | opcode, 0x80 | length])
        elif length < 1 << 16:
            head = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
        mask = self._random(4)
        self._down(head + mask + _xor(body, mask))


def _xor(data: bytes, mask: bytes) -> bytes:
    repeated = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )
