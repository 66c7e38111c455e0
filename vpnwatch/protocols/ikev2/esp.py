"""The child SA's packets: ESP (RFC 4303) in UDP (RFC 3948), sealed and opened with its keys.

What travels inside (ICMP echoes from the inner address the gateway assigned) is
:mod:`vpnwatch.protocols.ip`'s; an echo counts only when its reply comes back inside ESP that
authenticates with the child SA's keys.
"""

from __future__ import annotations

import struct

from vpnwatch.protocols.ikev2.transforms import DecryptError, DirectionKeys, Random, pad

NEXT_HEADER_IPV4 = 4
_ESP_HEADER = struct.Struct("!4sI")


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
