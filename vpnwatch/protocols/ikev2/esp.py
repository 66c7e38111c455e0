"""The child SA's packets: ESP (RFC 4303) in UDP (RFC 3948), and the ICMP echo sent through it.

A probe sends one ICMP echo request from the inner address the gateway assigned to an address
behind the gateway and counts the tunnel as carrying traffic only when the echo reply comes back
inside ESP that authenticates with the child SA's keys.
"""

from __future__ import annotations

import ipaddress
import struct

from vpnwatch.protocols.ikev2.transforms import DecryptError, DirectionKeys, Random, pad

NEXT_HEADER_IPV4 = 4
_ESP_HEADER = struct.Struct("!4sI")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_ICMP = struct.Struct("!BBHHH")
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


class EspSa:
    """One child SA: our outbound SPI and keys, the responder's, and the sequence number."""

    def __init__(
        self,
        outbound: DirectionKeys,
        inbound: DirectionKeys,
        spi_out: bytes,
        spi_in: bytes,
        random: Random,
    ) -> None:
        self._outbound, self._inbound = outbound, inbound
        self.spi_out, self.spi_in = spi_out, spi_in
        self._random = random
        self._sequence = 0

    def seal(self, packet: bytes) -> bytes:
        """An IPv4 packet as an ESP packet to the responder."""
        self._sequence += 1
        header = _ESP_HEADER.pack(self.spi_out, self._sequence)
        cipher = self._outbound.cipher
        body = pad(packet, cipher.block, bytes([NEXT_HEADER_IPV4]))
        return header + self._outbound.seal(header, body, self._random(cipher.iv_size))

    def open(self, packet: bytes) -> bytes:
        """The inner packet of an ESP packet from the responder; raises DecryptError."""
        if len(packet) < _ESP_HEADER.size or packet[:4] != self.spi_in:
            raise DecryptError("not an ESP packet of this child SA")
        header = packet[: _ESP_HEADER.size]
        plain = self._inbound.open(header, packet[_ESP_HEADER.size :])
        if len(plain) < 2 or plain[-1] != NEXT_HEADER_IPV4 or plain[-2] + 2 > len(plain):
            raise DecryptError("an ESP trailer that is not IPv4's")
        return plain[: -2 - plain[-2]]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(
    *,
    source: ipaddress.IPv4Address,
    destination: ipaddress.IPv4Address,
    identifier: int,
    sequence: int,
    payload: bytes,
) -> bytes:
    """An IPv4 ICMP echo request."""
    icmp = _ICMP.pack(ICMP_ECHO_REQUEST, 0, 0, identifier, sequence) + payload
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    length = _IPV4.size + len(icmp)
    header = _IPV4.pack(
        0x45, 0, length, identifier, 0x4000, 64, 1, 0, source.packed, destination.packed
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + icmp


def is_echo_reply(
    packet: bytes,
    *,
    source: ipaddress.IPv4Address,
    destination: ipaddress.IPv4Address,
    identifier: int,
    sequence: int,
    payload: bytes,
) -> bool:
    """Whether ``packet`` is the reply from ``source`` to ``destination`` to our echo request."""
    if len(packet) < _IPV4.size or packet[0] >> 4 != 4:
        return False
    header_size = (packet[0] & 0x0F) * 4
    _, _, length, _, _, _, protocol, _, src, dst = _IPV4.unpack_from(packet)
    if protocol != 1 or length > len(packet) or src != source.packed or dst != destination.packed:
        return False
    icmp = packet[header_size:length]
    if len(icmp) < _ICMP.size or _checksum(icmp) != 0:
        return False
    kind, code, _, ident, seq = _ICMP.unpack_from(icmp)
    return (kind, code, ident, seq, icmp[_ICMP.size :]) == (
        ICMP_ECHO_REPLY,
        0,
        identifier,
        sequence,
        payload,
    )
