"""Control packet codec and TCP framing: round trips, exact bytes, and bad input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnwatch.protocols.openvpn.packets import (
    MAX_PACKET_SIZE,
    ControlPacket,
    Opcode,
    PacketError,
    TcpDeframer,
    decode,
    frame_tcp,
)

SID = bytes.fromhex("0102030405060708")
REMOTE = bytes.fromhex("a1a2a3a4a5a6a7a8")


def test_client_reset_bytes() -> None:
    packet = ControlPacket(Opcode.CONTROL_HARD_RESET_CLIENT_V2, SID, message_id=0)
    # opcode 7 << 3 | key id 0 = 0x38; no ACKs; message id 0; no payload
    assert packet.encode() == bytes.fromhex("3801020304050607080000000000")


def test_control_packet_with_ack_bytes() -> None:
    packet = ControlPacket(Opcode.CONTROL_V1, SID, (0,), REMOTE, 1, b"hello")
    expected = (
        bytes([4 << 3])
        + SID
        + b"\x01"
        + struct.pack("!I", 0)
        + REMOTE
        + struct.pack("!I", 1)
        + b"hello"
    )
    assert packet.encode() == expected
    assert decode(expected) == packet


def test_ack_packet_has_no_message_id() -> None:
    packet = ControlPacket(Opcode.ACK_V1, SID, (3, 4), REMOTE)
    assert packet.encode() == bytes([5 << 3]) + SID + b"\x02" + struct.pack("!II", 3, 4) + REMOTE


reliable_opcodes = st.sampled_from(
    [Opcode.CONTROL_V1, Opcode.CONTROL_HARD_RESET_SERVER_V2, Opcode.CONTROL_HARD_RESET_CLIENT_V3]
)


@given(
    opcode=reliable_opcodes,
    key_id=st.integers(0, 7),
    acks=st.lists(st.integers(0, 2**32 - 1), max_size=8),
    message_id=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=1200),
)
def test_round_trip(
    opcode: Opcode, key_id: int, acks: list[int], message_id: int, payload: bytes
) -> None:
    remote = REMOTE if acks else None
    packet = ControlPacket(opcode, SID, tuple(acks), remote, message_id, payload, key_id)
    assert decode(packet.encode()) == packet


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x38\x01\x02",  # shorter than a header
        bytes([4 << 3]) + SID,  # no ACK count
        bytes([4 << 3]) + SID + b"\x00\x00\x00",  # truncated message id
        bytes([4 << 3]) + SID + b"\x02" + b"\x00" * 8,  # ACKs without the remote session id
        bytes([4 << 3]) + SID + b"\x09" + b"\x00" * 60,  # more ACKs than OpenVPN allows
        bytes([31 << 3]) + SID + b"\x00" * 8,  # unknown opcode
        bytes([6 << 3]) + SID + b"\x00" * 8,  # data channel, not control
        bytes([5 << 3]) + SID + b"\x00",  # ACK_V1 acknowledging nothing
        bytes([4 << 3]) + SID + b"\x00" * (MAX_PACKET_SIZE),  # oversized
    ],
)
def test_bad_packets_raise_packet_error(data: bytes) -> None:
    with pytest.raises(PacketError):
        decode(data)


@given(st.binary(max_size=3000))
def test_garbage_raises_only_packet_error(data: bytes) -> None:
    with contextlib.suppress(PacketError):
        decode(data)


def test_tcp_framing_survives_any_split() -> None:
    packets = [b"\x38" + SID + b"\x00" * 5, b"x" * 300, b"\x28" + SID + b"\x00" * 5]
    stream = b"".join(frame_tcp(p) for p in packets)
    for chunk_size in (1, 2, 3, 7, 100, len(stream)):
        deframer = TcpDeframer()
        received = []
        for start in range(0, len(stream), chunk_size):
            received += deframer.feed(stream[start : start + chunk_size])
        assert received == packets


def test_tcp_frame_prefix_is_big_endian_length() -> None:
    assert frame_tcp(b"abc") == b"\x00\x03abc"


@pytest.mark.parametrize("length", [0, MAX_PACKET_SIZE + 1, 0xFFFF])
def test_tcp_frame_with_impossible_length_is_an_error(length: int) -> None:
    with pytest.raises(PacketError):
        TcpDeframer().feed(struct.pack("!H", length) + b"\x00" * 10)
