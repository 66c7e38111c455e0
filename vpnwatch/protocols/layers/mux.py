"""Mux.Cool (v2ray's multiplexing) as a layer: v2ray-plugin wraps streams in it unless ``mux=0``.

The server end of v2ray-plugin expects it by default (its dokodemo-door forwards to
``v1.mux.cool``). A probe opens one sub-connection: a ``New`` frame carrying the first payload,
``Keep`` frames after; the server answers in ``Keep`` frames of the same id and ``End``s it.
Frames are a 2-byte metadata length, the metadata (id, status, option, and for ``New`` the
network and target), then, when option D is set, a 2-byte data length and the data.
"""

from __future__ import annotations

import struct

from vpnwatch.protocols.layers.stack import Layer, LayerFailed
from vpnwatch.result import Failure

NEW, KEEP, END, KEEP_ALIVE = 1, 2, 3, 4
OPTION_DATA = 0x01
NETWORK_TCP = 1
ADDRESS_IPV4 = 1
SESSION_ID = 1
#: The target in our ``New`` frame: the plugin's server overrides it with its Shadowsocks port.
PLACEHOLDER_TARGET = struct.pack("!HB4s", 1080, ADDRESS_IPV4, bytes([127, 0, 0, 1]))
MAX_DATA = 0xFFFF


class MuxCoolLayer(Layer):
    """One Mux.Cool sub-connection."""

    def __init__(self) -> None:
        super().__init__()
        self._opened = False
        self._buffer = bytearray()
        self.ready = True

    def _wrap(self, payload: bytes) -> None:
        for start in range(0, len(payload), MAX_DATA):
            piece = payload[start : start + MAX_DATA]
            if not self._opened:
                self._opened = True
                meta = struct.pack("!HBBB", SESSION_ID, NEW, OPTION_DATA, NETWORK_TCP)
                meta += PLACEHOLDER_TARGET
            else:
                meta = struct.pack("!HBB", SESSION_ID, KEEP, OPTION_DATA)
            self._down(struct.pack("!H", len(meta)) + meta + struct.pack("!H", len(piece)) + piece)

    def receive(self, data: bytes) -> bytes:
        self._buffer += data
        payload = []
        while len(self._buffer) >= 2:
            meta_length = struct.unpack("!H", self._buffer[:2])[0]
            if meta_length < 4:
                raise LayerFailed(Failure.PROTOCOL, "a Mux.Cool frame with short metadata")
            end = 2 + meta_length
            if len(self._buffer) < end:
                break
            session, status, option = struct.unpack("!HBB", self._buffer[2:6])
            data_length = 0
            if option & OPTION_DATA:
                if len(self._buffer) < end + 2:
                    break
                data_length = struct.unpack("!H", self._buffer[end : end + 2])[0]
                if len(self._buffer) < end + 2 + data_length:
                    break
                body = bytes(self._buffer[end + 2 : end + 2 + data_length])
                end += 2 + data_length
                if session == SESSION_ID and status in (NEW, KEEP, END):
                    payload.append(body)
            del self._buffer[:end]
            if session == SESSION_ID and status == END:
                self.ended = True
        return b"".join(payload)
