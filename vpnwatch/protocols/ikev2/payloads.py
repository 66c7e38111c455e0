"""IKEv2 messages and payloads as bytes (RFC 7296 section 3), read and written without I/O.

Readers take untrusted bytes and raise :class:`MalformedMessage` for anything that does not parse;
they never trust a length beyond the data that carries it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Exchange types.
IKE_SA_INIT = 34
IKE_AUTH = 35
CREATE_CHILD_SA = 36
INFORMATIONAL = 37

# Header flags.
FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20
VERSION = 0x20  # major 2, minor 0

# Payload types.
NO_NEXT = 0
SA = 33
KE = 34
IDI = 35
IDR = 36
CERT = 37
CERTREQ = 38
AUTH = 39
NONCE = 40
NOTIFY = 41
DELETE = 42
VENDOR = 43
TSI = 44
TSR = 45
SK = 46
CP = 47
EAP = 48

# Protocol ids.
PROTO_IKE = 1
PROTO_ESP = 3

# Notify types: errors below 16384, status from 16384.
NOTIFY_NAMES = {
    1: "UNSUPPORTED_CRITICAL_PAYLOAD",
    4: "INVALID_IKE_SPI",
    5: "INVALID_MAJOR_VERSION",
    7: "INVALID_SYNTAX",
    9: "INVALID_MESSAGE_ID",
    11: "INVALID_SPI",
    14: "NO_PROPOSAL_CHOSEN",
    17: "INVALID_KE_PAYLOAD",
    24: "AUTHENTICATION_FAILED",
    34: "SINGLE_PAIR_REQUIRED",
    35: "NO_ADDITIONAL_SAS",
    36: "INTERNAL_ADDRESS_FAILURE",
    37: "FAILED_CP_REQUIRED",
    38: "TS_UNACCEPTABLE",
    39: "INVALID_SELECTORS",
    43: "TEMPORARY_FAILURE",
    44: "CHILD_SA_NOT_FOUND",
}
NO_PROPOSAL_CHOSEN = 14
INVALID_KE_PAYLOAD = 17
AUTHENTICATION_FAILED = 24
SINGLE_PAIR_REQUIRED = 34
INTERNAL_ADDRESS_FAILURE = 36
FAILED_CP_REQUIRED = 37
TS_UNACCEPTABLE = 38
INVALID_SELECTORS = 39
ERROR_LIMIT = 16384
INITIAL_CONTACT = 16384
NAT_DETECTION_SOURCE_IP = 16388
NAT_DETECTION_DESTINATION_IP = 16389
COOKIE = 16390
SIGNATURE_HASH_ALGORITHMS = 16431

# Identification types.
ID_IPV4_ADDR = 1
ID_FQDN = 2
ID_RFC822_ADDR = 3
ID_IPV6_ADDR = 5
ID_DER_ASN1_DN = 9
ID_KEY_ID = 11

#: The Diffie-Hellman groups vpnwatch offers, by their IANA number (see transforms.key_exchange).
GROUPS = (14, 19, 20, 31)

# Certificate encodings, traffic selector types, configuration payload.
CERT_X509_SIGNATURE = 4
TS_IPV4_ADDR_RANGE = 7
TS_IPV6_ADDR_RANGE = 8
CFG_REQUEST = 1
CFG_REPLY = 2
INTERNAL_IP4_ADDRESS = 1
INTERNAL_IP6_ADDRESS = 8

HEADER = struct.Struct("!8s8sBBBBII")
HEADER_SIZE = HEADER.size
PAYLOAD_HEADER = struct.Struct("!BBH")
#: What precedes an IKE message on UDP 4500, where ESP packets (a non-zero SPI) also arrive.
NON_ESP_MARKER = b"\x00\x00\x00\x00"
#: A message bigger than this is not one a responder sends during a handshake.
MAX_MESSAGE = 65535


class MalformedMessage(ValueError):
    """Bytes that are not a well-formed IKEv2 message or payload."""


@dataclass(frozen=True, slots=True)
class Header:
    spi_i: bytes
    spi_r: bytes
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    length: int

    def encode(self) -> bytes:
        return HEADER.pack(
            self.spi_i,
            self.spi_r,
            self.next_payload,
            VERSION,
            self.exchange,
            self.flags,
            self.message_id,
            self.length,
        )


@dataclass(frozen=True, slots=True)
class Payload:
    """One payload: its type, its body, and the type of the payload after it."""

    kind: int
    body: bytes
    next_kind: int


def parse_header(data: bytes) -> Header:
    if len(data) < HEADER_SIZE:
        raise MalformedMessage(f"{len(data)} bytes, shorter than an IKE header")
    spi_i, spi_r, next_payload, version, exchange, flags, message_id, length = HEADER.unpack_from(
        data
    )
    if version >> 4 != 2:
        raise MalformedMessage(f"IKE major version {version >> 4}, not 2")
    if length != len(data):
        raise MalformedMessage(f"header length {length} but {len(data)} bytes arrived")
    return Header(spi_i, spi_r, next_payload, exchange, flags, message_id, length)


def parse_payloads(first: int, data: bytes) -> list[Payload]:
    """The payload chain starting with type ``first``; an SK payload ends it (RFC 7296 3.14)."""
    payloads, kind, offset = [], first, 0
    while kind != NO_NEXT:
        if offset + PAYLOAD_HEADER.size > len(data):
            raise MalformedMessage(f"payload {kind} cut short")
        next_kind, _critical, length = PAYLOAD_HEADER.unpack_from(data, offset)
        if length < PAYLOAD_HEADER.size or offset + length > len(data):
            raise MalformedMessage(f"payload {kind} claims {length} bytes")
        payloads.append(
            Payload(kind, data[offset + PAYLOAD_HEADER.size : offset + length], next_kind)
        )
        offset += length
        if kind == SK:
            break
        kind = next_kind
    if kind != SK and offset != len(data):
        raise MalformedMessage(f"{len(data) - offset} bytes after the last payload")
    return payloads


def encode_payloads(payloads: Sequence[tuple[int, bytes]], tail: int = NO_NEXT) -> bytes:
    """The chain of (type, body) payloads; the last one's next-payload field is ``tail``."""
    out = bytearray()
    for index, (_kind, body) in enumerate(payloads):
        after = payloads[index + 1][0] if index + 1 < len(payloads) else tail
        out += PAYLOAD_HEADER.pack(after, 0, PAYLOAD_HEADER.size + len(body)) + body
    return bytes(out)


# --- Security associations (3.3) ---

#: A transform: (type, id, key length in bits or None).
Transform = tuple[int, int, int | None]


@dataclass(frozen=True, slots=True)
class Proposal:
    number: int
    protocol: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def chosen(self, kind: int) -> Transform | None:
        return next((t for t in self.transforms if t[0] == kind), None)


def encode_sa(proposals: Sequence[Proposal]) -> bytes:
    out = bytearray()
    for index, proposal in enumerate(proposals):
        body = bytearray()
        for number, (kind, ident, key_bits) in enumerate(proposal.transforms):
            attributes = b"" if key_bits is None else struct.pack("!HH", 0x800E, key_bits)
            last = 0 if number == len(proposal.transforms) - 1 else 3
            body += struct.pack("!BBHBBH", last, 0, 8 + len(attributes), kind, 0, ident)
            body += attributes
        last = 0 if index == len(proposals) - 1 else 2
        length = 8 + len(proposal.spi) + len(body)
        out += struct.pack(
            "!BBHBBBB",
            last,
            0,
            length,
            proposal.number,
            proposal.protocol,
            len(proposal.spi),
            len(proposal.transforms),
        )
        out += proposal.spi + body
    return bytes(out)


def parse_sa(body: bytes) -> list[Proposal]:
    proposals, offset = [], 0
    while offset < len(body):
        if offset + 8 > len(body):
            raise MalformedMessage("proposal cut short")
        last, _, length, number, protocol, spi_size, count = struct.unpack_from(
            "!BBHBBBB", body, offset
        )
        if length < 8 + spi_size or offset + length > len(body):
            raise MalformedMessage(f"proposal claims {length} bytes")
        spi = body[offset + 8 : offset + 8 + spi_size]
        transforms, cursor, end = [], offset + 8 + spi_size, offset + length
        for _ in range(count):
            if cursor + 8 > end:
                raise MalformedMessage("transform cut short")
            _, _, t_length, kind, _, ident = struct.unpack_from("!BBHBBH", body, cursor)
            if t_length < 8 or cursor + t_length > end:
                raise MalformedMessage(f"transform claims {t_length} bytes")
            key_bits = None
            attributes = body[cursor + 8 : cursor + t_length]
            while len(attributes) >= 4:
                a_type, a_value = struct.unpack_from("!HH", attributes)
                if a_type == 0x800E:
                    key_bits = a_value
                    attributes = attributes[4:]
                elif a_type & 0x8000:
                    attributes = attributes[4:]
                else:  # TLV attribute: skip its value
                    attributes = attributes[4 + a_value :]
            transforms.append((kind, ident, key_bits))
            cursor += t_length
        proposals.append(Proposal(number, protocol, spi, tuple(transforms)))
        offset += length
        if last == 0:
            break
    return proposals


# --- Small payloads ---


def encode_ke(group: int, public: bytes) -> bytes:
    return struct.pack("!HH", group, 0) + public


def parse_ke(body: bytes) -> tuple[int, bytes]:
    if len(body) < 4:
        raise MalformedMessage("KE payload cut short")
    return struct.unpack_from("!H", body)[0], body[4:]


def encode_notify(kind: int, data: bytes = b"", protocol: int = 0, spi: bytes = b"") -> bytes:
    return struct.pack("!BBH", protocol, len(spi), kind) + spi + data


def parse_notify(body: bytes) -> tuple[int, bytes]:
    """(notify type, notification data)."""
    if len(body) < 4:
        raise MalformedMessage("notify payload cut short")
    _protocol, spi_size, kind = struct.unpack_from("!BBH", body)
    if 4 + spi_size > len(body):
        raise MalformedMessage("notify SPI cut short")
    return kind, body[4 + spi_size :]


def notify_name(kind: int) -> str:
    return NOTIFY_NAMES.get(kind, f"notify {kind}")


def encode_id(id_type: int, data: bytes) -> bytes:
    return struct.pack("!B3x", id_type) + data


def parse_id(body: bytes) -> tuple[int, bytes]:
    if len(body) < 4:
        raise MalformedMessage("ID payload cut short")
    return body[0], body[4:]


def encode_auth(method: int, data: bytes) -> bytes:
    return struct.pack("!B3x", method) + data


def parse_auth(body: bytes) -> tuple[int, bytes]:
    if len(body) < 4:
        raise MalformedMessage("AUTH payload cut short")
    return body[0], body[4:]


def parse_cert(body: bytes) -> tuple[int, bytes]:
    if not body:
        raise MalformedMessage("CERT payload is empty")
    return body[0], body[1:]


def encode_delete(protocol: int, spis: Iterable[bytes] = (), spi_size: int = 0) -> bytes:
    spis = list(spis)
    return struct.pack("!BBH", protocol, spi_size, len(spis)) + b"".join(spis)


# --- Traffic selectors (3.13) and configuration (3.15) ---

Selector = tuple[
    ipaddress.IPv4Address | ipaddress.IPv6Address, ipaddress.IPv4Address | ipaddress.IPv6Address
]


def encode_ts(selectors: Sequence[Selector]) -> bytes:
    out = struct.pack("!B3x", len(selectors))
    for start, end in selectors:
        kind = TS_IPV4_ADDR_RANGE if start.version == 4 else TS_IPV6_ADDR_RANGE
        addresses = start.packed + end.packed
        out += struct.pack("!BBHHH", kind, 0, 8 + len(addresses), 0, 65535) + addresses
    return out


def parse_ts(body: bytes) -> list[Selector]:
    if len(body) < 4:
        raise MalformedMessage("TS payload cut short")
    selectors, offset = [], 4
    for _ in range(body[0]):
        if offset + 8 > len(body):
            raise MalformedMessage("traffic selector cut short")
        kind, _, length = struct.unpack_from("!BBH", body, offset)
        size = {TS_IPV4_ADDR_RANGE: 4, TS_IPV6_ADDR_RANGE: 16}.get(kind)
        if size is None or length != 8 + 2 * size or offset + length > len(body):
            raise MalformedMessage(f"traffic selector of type {kind} and {length} bytes")
        raw = body[offset + 8 : offset + length]
        selectors.append((ipaddress.ip_address(raw[:size]), ipaddress.ip_address(raw[size:])))
        offset += length
    return selectors


def encode_cp_request(attributes: Iterable[int]) -> bytes:
    return struct.pack("!B3x", CFG_REQUEST) + b"".join(struct.pack("!HH", a, 0) for a in attributes)


def parse_cp(body: bytes) -> tuple[int, list[tuple[int, bytes]]]:
    """(CFG type, [(attribute type, value)])."""
    if len(body) < 4:
        raise MalformedMessage("CP payload cut short")
    attributes, offset = [], 4
    while offset + 4 <= len(body):
        kind, length = struct.unpack_from("!HH", body, offset)
        if offset + 4 + length > len(body):
            raise MalformedMessage("configuration attribute cut short")
        attributes.append((kind & 0x7FFF, body[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    return body[0], attributes
