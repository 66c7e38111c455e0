"""The data phase of an obfs4 connection: application bytes in and out of frames."""

from __future__ import annotations

from vpnwatch.protocols.obfs4.events import NEED_DATA, DataReceived, NeedData
from vpnwatch.protocols.obfs4.framing import (
    DIRECTION_KEY_LENGTH,
    FrameDecoder,
    FrameEncoder,
    PacketType,
)
from vpnwatch.protocols.obfs4.ntor import SESSION_KEY_MATERIAL_LENGTH


class Obfs4Session:
    """Frames application data after a completed handshake, one object per connection.

    The reference implementation keys the client-to-server direction with the first half of the
    session key material (the specification's prose says the opposite; servers follow the code).
    Packets other than payload (the server's PRNG seed for its length distribution, and types
    unknown today) are authenticated and then ignored, as the specification asks.
    """

    def __init__(self, send_keys: bytes, receive_keys: bytes) -> None:
        self._encoder = FrameEncoder(send_keys)
        self._decoder = FrameDecoder(receive_keys)

    @classmethod
    def for_client(cls, key_material: bytes) -> Obfs4Session:
        _check_length(key_material)
        return cls(key_material[:DIRECTION_KEY_LENGTH], key_material[DIRECTION_KEY_LENGTH:])

    @classmethod
    def for_server(cls, key_material: bytes) -> Obfs4Session:
        _check_length(key_material)
        return cls(key_material[DIRECTION_KEY_LENGTH:], key_material[:DIRECTION_KEY_LENGTH])

    def send(self, data: bytes) -> bytes:
        """The frames that carry ``data`` to the peer."""
        return self._encoder.encode_data(data)

    def send_packet(self, kind: int, payload: bytes, padding: int = 0) -> bytes:
        return self._encoder.encode_packet(kind, payload, padding)

    def receive_data(self, data: bytes) -> None:
        self._decoder.receive_data(data)

    def next_event(self) -> DataReceived | NeedData:
        """The next payload from the peer; raises MalformedFrame on anything not genuine."""
        while (packet := self._decoder.next_packet()) is not None:
            if packet.kind == PacketType.PAYLOAD and packet.payload:
                return DataReceived(packet.payload)
        return NEED_DATA


def _check_length(key_material: bytes) -> None:
    if len(key_material) != SESSION_KEY_MATERIAL_LENGTH:
        raise ValueError(f"session key material is {SESSION_KEY_MATERIAL_LENGTH} bytes")
