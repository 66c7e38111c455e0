"""The frame codec: wire layout, round trips in any chunking, and tampering rejected."""

from __future__ import annotations

import os
import struct

import nacl.secret
import pytest
from hypothesis import given
from hypothesis import strategies as st
from siphash24 import siphash24

from vpnwatch.protocols.obfs4 import DataReceived, MalformedFrame, Obfs4Session
from vpnwatch.protocols.obfs4.events import NEED_DATA
from vpnwatch.protocols.obfs4.framing import (
    MAX_PACKET_PAYLOAD_LENGTH,
    FrameDecoder,
    FrameEncoder,
    LengthMask,
    PacketType,
)

KEYS = bytes(range(72))
BOX_KEY, PREFIX, SIP_KEY, SIP_IV = KEYS[:32], KEYS[32:48], KEYS[48:64], KEYS[64:72]


def drain(session: Obfs4Session) -> bytes:
    received = b""
    while isinstance(event := session.next_event(), DataReceived):
        received += event.data
    return received


def test_siphash_matches_the_reference_vector() -> None:
    # SipHash paper, appendix A: key 00..0f, message 00..0e.
    digest = siphash24(bytes(range(15)), key=bytes(range(16))).digest()
    assert digest == (0xA129CA6149BE45E5).to_bytes(8, "little")


def test_length_mask_hashes_the_whole_stream() -> None:
    mask = LengthMask(SIP_KEY, SIP_IV)
    first = siphash24(SIP_IV, key=SIP_KEY).digest()
    second = siphash24(SIP_IV + first, key=SIP_KEY).digest()
    assert mask.next() == int.from_bytes(first[:2], "big")
    assert mask.next() == int.from_bytes(second[:2], "big")


def test_frame_wire_layout() -> None:
    frame = FrameEncoder(KEYS).encode_packet(PacketType.PAYLOAD, b"hello", padding=3)
    box = frame[2:]
    (masked,) = struct.unpack(">H", frame[:2])
    assert masked ^ LengthMask(SIP_KEY, SIP_IV).next() == len(box)
    nonce = PREFIX + (1).to_bytes(8, "big")
    assert nacl.secret.SecretBox(BOX_KEY).decrypt(box, nonce) == b"\x00\x00\x05hello\x00\x00\x00"


def test_sessions_talk_both_ways() -> None:
    material = os.urandom(144)
    client, server = Obfs4Session.for_client(material), Obfs4Session.for_server(material)
    server.receive_data(client.send(b"ping" * 1000))
    assert drain(server) == b"ping" * 1000
    client.receive_data(server.send(b"pong"))
    assert drain(client) == b"pong"


def test_seed_and_padding_packets_are_skipped() -> None:
    material = os.urandom(144)
    client, server = Obfs4Session.for_client(material), Obfs4Session.for_server(material)
    client.receive_data(
        server.send_packet(PacketType.PRNG_SEED, os.urandom(24))
        + server.send_packet(PacketType.PAYLOAD, b"", padding=100)
        + server.send_packet(7, b"from the future")
        + server.send(b"data")
    )
    assert client.next_event() == DataReceived(b"data")
    assert client.next_event() is NEED_DATA


@given(
    st.lists(st.binary(max_size=3000), max_size=5),
    st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=20),
)
def test_round_trip_in_any_chunking(messages: list[bytes], cuts: list[int]) -> None:
    encoder, decoder = FrameEncoder(KEYS), FrameDecoder(KEYS)
    wire = b"".join(encoder.encode_data(message) for message in messages)
    received = b""
    position = 0
    for cut in [*cuts, len(wire)]:
        decoder.receive_data(wire[position : position + cut])
        position += cut
        while (packet := decoder.next_packet()) is not None:
            received += packet.payload
    assert received == b"".join(messages)


def test_largest_packet_fits_one_frame() -> None:
    frame = FrameEncoder(KEYS).encode_data(bytes(MAX_PACKET_PAYLOAD_LENGTH))
    assert len(frame) == 1448
    with pytest.raises(ValueError):
        FrameEncoder(KEYS).encode_packet(PacketType.PAYLOAD, bytes(MAX_PACKET_PAYLOAD_LENGTH + 1))


def test_tampered_box_is_rejected() -> None:
    frame = bytearray(FrameEncoder(KEYS).encode_data(b"secret"))
    frame[-1] ^= 1
    decoder = FrameDecoder(KEYS)
    decoder.receive_data(bytes(frame))
    with pytest.raises(MalformedFrame, match="authentication"):
        decoder.next_packet()


def test_out_of_range_length_is_rejected() -> None:
    frame = bytearray(FrameEncoder(KEYS).encode_data(b"secret"))
    mask = LengthMask(SIP_KEY, SIP_IV).next()
    frame[:2] = struct.pack(">H", 5000 ^ mask)
    decoder = FrameDecoder(KEYS)
    decoder.receive_data(bytes(frame))
    with pytest.raises(MalformedFrame, match="length 5000"):
        decoder.next_packet()


@pytest.mark.parametrize("plaintext", [b"\x00\x00", b"\x00\x00\x09short"])
def test_malformed_packets_are_rejected(plaintext: bytes) -> None:
    decoder = FrameDecoder(KEYS)
    decoder.receive_data(FrameEncoder(KEYS).encode(plaintext))
    with pytest.raises(MalformedFrame):
        decoder.next_packet()


@given(st.binary(max_size=4000))
def test_garbage_gives_only_the_modules_error(garbage: bytes) -> None:
    session = Obfs4Session.for_client(bytes(144))
    session.receive_data(garbage)
    try:
        while session.next_event() is not NEED_DATA:
            pass
    except MalformedFrame:
        pass
