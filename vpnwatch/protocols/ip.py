"""ICMP and ICMPv6 echo packets inside a tunnel, built and parsed without I/O.

A tunnel test proves that a session carries real traffic by sending what ``ping`` sends: an IPv4
packet holding an ICMP echo request (RFC 792), or an IPv6 packet holding an ICMPv6 one (RFC 4443),
from the client's tunnel address to an address inside the tunnel. No TUN device and no root are
needed: the packet is bytes the tunnel seals, and the reply is bytes it opens.

:func:`echo_request` builds a whole packet, checksums included. :func:`parse` reads a packet that
came out of a tunnel: an :class:`Echo` (request or reply), an :class:`IcmpError` (a router inside
the tunnel said the destination is unreachable or the packet's time ran out) quoting one of our
echoes, or None for anything else, including every packet whose checksum does not verify. It never
raises for what a peer sent. :func:`answer` is what a host does with an echo request; tests use it
as the far end.

Only :mod:`ipaddress` and :mod:`struct`: importing this costs ``vpnwatch check`` nothing.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ICMP = 1
ICMPV6 = 58
ICMP_ECHO_REPLY = 0
ICMP_UNREACHABLE = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMPV6_UNREACHABLE = 1
ICMPV6_TIME_EXCEEDED = 3
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

IPV4_HEADER_SIZE = 20
IPV6_HEADER_SIZE = 40
ECHO_HEADER_SIZE = 8
#: An IP packet is at most this long (IPv4's total length field; IPv6 without jumbograms).
MAX_PACKET_SIZE = 65535
DEFAULT_HOP_LIMIT = 64

# version/IHL, DSCP/ECN, total length, identification, flags/fragment offset, TTL, protocol,
# header checksum, source, destination
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
# version/class/flow label, payload length, next header, hop limit, source, destination
_IPV6 = struct.Struct("!IHBB16s16s")
# type, code, checksum, identifier, sequence
_ECHO = struct.Struct("!BBHHH")
_DONT_FRAGMENT = 0x4000
#: IP version → (echo request, echo reply, (unreachable, time exceeded)) message types.
_KINDS = {
    4: (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY, (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED)),
    6: (ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY, (ICMPV6_UNREACHABLE, ICMPV6_TIME_EXCEEDED)),
}


def internet_checksum(data: bytes) -> int:
    """RFC 1071's ones' complement sum of 16-bit words, complemented."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _pseudo_header(source: bytes, destination: bytes, length: int) -> bytes:
    """The IPv6 pseudo-header ICMPv6's checksum covers (RFC 8200, section 8.1)."""
    return source + destination + struct.pack("!I3xB", length, ICMPV6)


@dataclass(frozen=True, slots=True)
class Echo:
    """An echo request or reply, with the addresses of the packet that carried it."""

    source: IPAddress
    destination: IPAddress
    identifier: int
    sequence: int
    payload: bytes
    reply: bool

    @property
    def size(self) -> int:
        """The whole IP packet's length."""
        header = IPV4_HEADER_SIZE if self.source.version == 4 else IPV6_HEADER_SIZE
        return header + ECHO_HEADER_SIZE + len(self.payload)


@dataclass(frozen=True, slots=True)
class IcmpError:
    """A router (``source``) inside the tunnel could not deliver one of our echoes.

    ``unreachable`` is False for a time-exceeded error. ``identifier`` and ``sequence`` are those of
    the quoted echo request.
    """

    source: IPAddress
    unreachable: bool
    code: int
    identifier: int
    sequence: int


def echo_request(
    source: IPAddress,
    destination: IPAddress,
    identifier: int,
    sequence: int,
    payload: bytes,
    *,
    hop_limit: int = DEFAULT_HOP_LIMIT,
) -> bytes:
    """A whole IPv4/ICMP or IPv6/ICMPv6 echo request packet, checksums computed."""
    return _echo(source, destination, identifier, sequence, payload, hop_limit=hop_limit)


def echo_reply(request: Echo, *, hop_limit: int = DEFAULT_HOP_LIMIT) -> bytes:
    """The reply a host sends to ``request``: addresses swapped, the same id, sequence, payload."""
    return _echo(
        request.destination,
        request.source,
        request.identifier,
        request.sequence,
        request.payload,
        hop_limit=hop_limit,
        reply=True,
    )


def answer(packet: bytes) -> bytes | None:
    """What a host does with ``packet``: the reply to an echo request, else None."""
    parsed = parse(packet)
    if isinstance(parsed, Echo) and not parsed.reply:
        return echo_reply(parsed)
    return None


def _echo(
    source: IPAddress,
    destination: IPAddress,
    identifier: int,
    sequence: int,
    payload: bytes,
    *,
    hop_limit: int,
    reply: bool = False,
) -> bytes:
    if source.version != destination.version:
        raise ValueError("an echo's source and destination must be of one IP version")
    if not (0 <= identifier <= 0xFFFF and 0 <= sequence <= 0xFFFF):
        raise ValueError("echo identifiers and sequence numbers are 16 bits")
    v4 = source.version == 4
    header_size = IPV4_HEADER_SIZE if v4 else IPV6_HEADER_SIZE
    if header_size + ECHO_HEADER_SIZE + len(payload) > MAX_PACKET_SIZE:
        raise ValueError(f"an echo packet is at most {MAX_PACKET_SIZE} bytes")
    kind = _KINDS[source.version][1 if reply else 0]
    message = _ECHO.pack(kind, 0, 0, identifier, sequence) + payload
    if v4:
        checksum = internet_checksum(message)
        header = _IPV4.pack(
            0x45, 0, IPV4_HEADER_SIZE + len(message), 0, _DONT_FRAGMENT, hop_limit, ICMP, 0,
            source.packed, destination.packed,
        )  # fmt: skip
        header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    else:
        pseudo = _pseudo_header(source.packed, destination.packed, len(message))
        checksum = internet_checksum(pseudo + message)
        header = _IPV6.pack(
            6 << 28, len(message), ICMPV6, hop_limit, source.packed, destination.packed
        )
    return header + message[:2] + checksum.to_bytes(2, "big") + message[4:]


def parse(packet: bytes) -> Echo | IcmpError | None:
    """What ``packet`` is: an echo, an ICMP error quoting an echo, or None for anything else."""
    located = _locate(packet)
    if located is None:
        return None
    source, destination, message, checksum_prefix = located
    if len(message) < ECHO_HEADER_SIZE or internet_checksum(checksum_prefix + message) != 0:
        return None
    kind, code, _, identifier, sequence = _ECHO.unpack_from(message)
    request, reply, errors = _KINDS[source.version]
    if kind in (request, reply):
        payload = message[ECHO_HEADER_SIZE:]
        return Echo(source, destination, identifier, sequence, payload, kind == reply)
    if kind not in errors:
        return None
    quoted = _quoted_echo(message[ECHO_HEADER_SIZE:], source.version)
    if quoted is None:
        return None
    return IcmpError(source, kind == errors[0], code, *quoted)


def _locate(packet: bytes) -> tuple[IPAddress, IPAddress, bytes, bytes] | None:
    """(source, destination, ICMP message, what its checksum covers before it) of an ICMP packet."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        if len(packet) < IPV4_HEADER_SIZE:
            return None
        header_size = (packet[0] & 0x0F) * 4
        _, _, total, _, fragment, _, protocol, _, source, destination = _IPV4.unpack_from(packet)
        if (
            header_size < IPV4_HEADER_SIZE
            or not header_size <= total <= len(packet)
            or internet_checksum(packet[:header_size]) != 0
            or fragment & 0x3FFF  # a fragment: echoes this small are never fragmented
            or protocol != ICMP
        ):
            return None
        return (
            ipaddress.IPv4Address(source),
            ipaddress.IPv4Address(destination),
            packet[header_size:total],
            b"",
        )
    if version == 6:
        if len(packet) < IPV6_HEADER_SIZE:
            return None
        _, length, next_header, _, source, destination = _IPV6.unpack_from(packet)
        if next_header != ICMPV6 or IPV6_HEADER_SIZE + length > len(packet):
            return None  # extension headers are not followed: echo replies carry none
        message = packet[IPV6_HEADER_SIZE : IPV6_HEADER_SIZE + length]
        return (
            ipaddress.IPv6Address(source),
            ipaddress.IPv6Address(destination),
            message,
            _pseudo_header(source, destination, length),
        )
    return None


def _quoted_echo(quote: bytes, version: int) -> tuple[int, int] | None:
    """(identifier, sequence) of the echo request an ICMP error quotes, if it quotes one.

    An error quotes the offending packet's header and at least its first 8 bytes beyond: enough
    for an echo's identifier and sequence, not for its checksum, which is not checked.
    """
    if version == 4:
        if len(quote) < IPV4_HEADER_SIZE:
            return None
        header_size = (quote[0] & 0x0F) * 4
        if quote[0] >> 4 != 4 or header_size < IPV4_HEADER_SIZE or quote[9] != ICMP:
            return None
        echo, request = quote[header_size:], ICMP_ECHO_REQUEST
    else:
        if len(quote) < IPV6_HEADER_SIZE or quote[0] >> 4 != 6 or quote[6] != ICMPV6:
            return None
        echo, request = quote[IPV6_HEADER_SIZE:], ICMPV6_ECHO_REQUEST
    if len(echo) < ECHO_HEADER_SIZE or echo[0] != request:
        return None
    _, _, _, identifier, sequence = _ECHO.unpack_from(echo)
    return identifier, sequence
