"""Exchanges with the real OpenVPN server (``openvpn.json``), and OpenVPN's control-channel wire
format written here from its specification, owing nothing to vpnwatch.

The first half reads and writes control packets as OpenVPN documents them (the opcode/key-id
byte, session ids, ACK arrays, message ids, TCP's length prefix, tls-auth's HMAC and tls-crypt's
AES-256-CTR with HMAC-SHA256), with the standard library and ``cryptography`` alone. It is checked
against the real server's bytes in the vectors, and the in-memory server of the client tests is
built on it, so that no test answers the client with the client's own code.

The second half loads the captures. A capture holds every input the client was given before TLS
(its randomness, the Unix time, the wrapping key) and every packet each side sent up to the
server's hard reset, with the client's next packet (its TLS ClientHello, which acknowledges the
reset). TLS itself cannot be replayed byte for byte: OpenSSL draws its own randomness (the
ClientHello's random and key share), which no caller can inject, so the replay covers the
exchange before TLS and only the framing of the packet that starts it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.vectors.draws import replay_draws

VECTORS = Path(__file__).with_name("openvpn.json")

# -- the wire format, from OpenVPN's documentation (doc/doxygen, ssl_pkt.h, reliable.h) ----------

P_CONTROL_V1 = 4
P_ACK_V1 = 5
P_CONTROL_HARD_RESET_CLIENT_V2 = 7
P_CONTROL_HARD_RESET_SERVER_V2 = 8
P_CONTROL_HARD_RESET_CLIENT_V3 = 10
P_CONTROL_WKC_V1 = 11
#: Opcodes whose packets carry a tls-crypt-v2 wrapped client key after the tls-crypt part.
CARRY_WKC = (P_CONTROL_HARD_RESET_CLIENT_V3, P_CONTROL_WKC_V1)
HEADER = 9  # opcode << 3 | key id, then the sender's 8-byte session id


class Malformed(ValueError):
    """Bytes that are not a control packet."""


class Unauthentic(ValueError):
    """A packet whose tls-auth HMAC or tls-crypt tag does not verify."""


@dataclass(frozen=True)
class Packet:
    """A control packet with the tls-auth/tls-crypt layer (if any) removed."""

    opcode: int
    session_id: bytes
    acks: tuple[int, ...] = ()
    remote_session_id: bytes | None = None
    message_id: int | None = None  # None only in P_ACK_V1
    payload: bytes = b""
    key_id: int = 0
    #: tls-auth/tls-crypt replay protection: (packet id, Unix time); None without wrapping.
    stamp: tuple[int, int] | None = None
    #: The tls-crypt-v2 wrapped client key that followed the packet, if any.
    wkc: bytes = b""

    def header(self) -> bytes:
        return bytes([self.opcode << 3 | self.key_id]) + self.session_id

    def body(self) -> bytes:
        """``ack count | acked ids | remote session id (if any ACK) | message id | payload``."""
        out = bytes([len(self.acks)]) + b"".join(struct.pack("!I", a) for a in self.acks)
        if self.acks:
            assert self.remote_session_id is not None
            out += self.remote_session_id
        if self.message_id is not None:
            out += struct.pack("!I", self.message_id)
        return out + self.payload


def parse(header: bytes, body: bytes, stamp: tuple[int, int] | None = None) -> Packet:
    """A packet from its clear header and its (unwrapped) body."""
    if len(header) != HEADER or not body:
        raise Malformed("truncated packet")
    opcode, count = header[0] >> 3, body[0]
    acked_end = 1 + 4 * count
    fields_end = acked_end + (8 if count else 0) + (0 if opcode == P_ACK_V1 else 4)
    if count > 8 or len(body) < fields_end:
        raise Malformed("packet shorter than its ACK array and ids")
    return Packet(
        opcode=opcode,
        session_id=header[1:],
        acks=struct.unpack_from(f"!{count}I", body, 1),
        remote_session_id=body[acked_end : acked_end + 8] if count else None,
        message_id=None
        if opcode == P_ACK_V1
        else int.from_bytes(body[fields_end - 4 : fields_end]),
        payload=body[fields_end:],
        key_id=header[0] & 7,
        stamp=stamp,
    )


def _slot(key: bytes, index: int) -> bytes:
    """The static key's 64-byte slots, in file order: cipher 0, HMAC 0, cipher 1, HMAC 1."""
    assert len(key) == 256
    return key[64 * index : 64 * index + 64]


class Plain:
    """No wrapping: the packet is its header and body."""

    def seal(self, packet: Packet, time: int = 0) -> bytes:
        return packet.header() + packet.body()

    def open(self, wire: bytes) -> Packet:
        return parse(wire[:HEADER], wire[HEADER:])


class TlsAuthWrap:
    """tls-auth: ``header | HMAC | packet id | time | body``, the HMAC over
    ``packet id | time | header | body``. Key direction 0 sends with HMAC slot 0 and checks slot 1,
    direction 1 the reverse; no direction uses slot 0 both ways."""

    def __init__(self, key: bytes, direction: int | None, digest: str = "sha1") -> None:
        send, check = {None: (1, 1), 0: (1, 3), 1: (3, 1)}[direction]
        self._digest = digest
        self._size = hashlib.new(digest).digest_size
        self._send_key = _slot(key, send)[: self._size]
        self._check_key = _slot(key, check)[: self._size]
        self.sent = 0

    def seal(self, packet: Packet, time: int = 0) -> bytes:
        self.sent += 1
        stamp = struct.pack("!II", self.sent, time)
        header, body = packet.header(), packet.body()
        mac = hmac.new(self._send_key, stamp + header + body, self._digest).digest()
        return header + mac + stamp + body

    def open(self, wire: bytes) -> Packet:
        header, mac = wire[:HEADER], wire[HEADER : HEADER + self._size]
        stamp, body = wire[HEADER + self._size : HEADER + self._size + 8], wire[self._size + 17 :]
        if len(stamp) != 8:
            raise Malformed("truncated tls-auth packet")
        expected = hmac.new(self._check_key, stamp + header + body, self._digest).digest()
        if not hmac.compare_digest(mac, expected):
            raise Unauthentic("tls-auth HMAC")
        return parse(header, body, struct.unpack("!II", stamp))


class TlsCryptWrap:
    """tls-crypt: ``header | packet id | time | tag | AES-256-CTR(body)``, the tag the
    HMAC-SHA256 of ``header | packet id | time | body`` and its first 16 bytes the CTR IV. Servers
    use key direction 0 and clients 1. ``wkc`` (tls-crypt-v2) follows the client's first packet."""

    def __init__(self, key: bytes, direction: int, wkc: bytes = b"") -> None:
        out_set, in_set = (0, 1) if direction == 0 else (1, 0)
        self._out = (_slot(key, 2 * out_set)[:32], _slot(key, 2 * out_set + 1)[:32])
        self._in = (_slot(key, 2 * in_set)[:32], _slot(key, 2 * in_set + 1)[:32])
        self._wkc = wkc
        self.sent = 0

    @staticmethod
    def _ctr(key: bytes, tag: bytes, data: bytes) -> bytes:
        cipher = Cipher(algorithms.AES(key), modes.CTR(tag[:16])).encryptor()
        return cipher.update(data) + cipher.finalize()

    def seal(self, packet: Packet, time: int = 0) -> bytes:
        self.sent += 1
        clear = packet.header() + struct.pack("!II", self.sent, time)
        body = packet.body()
        tag = hmac.new(self._out[1], clear + body, "sha256").digest()
        wkc = self._wkc if packet.opcode in CARRY_WKC else b""
        return clear + tag + self._ctr(self._out[0], tag, body) + wkc

    def open(self, wire: bytes) -> Packet:
        wkc = b""
        if wire[:1] and wire[0] >> 3 in CARRY_WKC:
            length = int.from_bytes(wire[-2:], "big")
            wire, wkc = wire[:-length], wire[-length:]
        clear, tag, ciphertext = wire[: HEADER + 8], wire[HEADER + 8 : HEADER + 40], wire[49:]
        if len(tag) != 32:
            raise Malformed("truncated tls-crypt packet")
        body = self._ctr(self._in[0], tag, ciphertext)
        if not hmac.compare_digest(tag, hmac.new(self._in[1], clear + body, "sha256").digest()):
            raise Unauthentic("tls-crypt tag")
        stamp = struct.unpack("!II", clear[HEADER:])
        return dataclasses.replace(parse(clear[:HEADER], body, stamp), wkc=wkc)


Wrap = Plain | TlsAuthWrap | TlsCryptWrap


def frame(packet: bytes) -> bytes:
    """Over TCP every packet goes behind its length, a big-endian u16."""
    return struct.pack("!H", len(packet)) + packet


def deframe(stream: bytes) -> tuple[list[bytes], bytes]:
    """The whole packets at the start of a TCP ``stream``, and the bytes left over."""
    packets = []
    while len(stream) >= 2 and len(stream) >= 2 + (length := int.from_bytes(stream[:2], "big")):
        packets.append(stream[2 : 2 + length])
        stream = stream[2 + length :]
    return packets, stream


# -- the captures --------------------------------------------------------------------------------

WrapName = Literal["none", "tls-auth", "tls-crypt", "tls-crypt-v2"]


@dataclass(frozen=True)
class Step:
    """One call in the client's life: what it sent from one ``data_to_send``, or one input."""

    side: Literal["client", "server"]
    at: float  # the ``now`` the client was given, from 0.0 at start()
    data: tuple[bytes, ...]  # client: the packets (framed over TCP); server: one input


@dataclass(frozen=True)
class OpenVPNCapture:
    """One client's exchange with a real server up to the server's reset, and its inputs."""

    name: str
    proto: Literal["udp", "tcp"]
    wrap: WrapName
    #: The client's wrapping key: the 256-byte static key, or the tls-crypt-v2 client key
    #: followed by its WKc. Generated for this capture and used nowhere else.
    key: bytes | None
    unix_time: float
    draws: tuple[bytes, ...]
    ca: str
    options: str
    peer_info: str
    steps: tuple[Step, ...]

    @property
    def tcp(self) -> bool:
        return self.proto == "tcp"

    def packets(self, step: Step) -> list[bytes]:
        """The packets in ``step``, unframed over TCP (the capture's reads hold whole packets)."""
        if not self.tcp:
            return list(step.data)
        packets, rest = deframe(b"".join(step.data))
        assert not rest, f"{self.name}: a read ends inside a packet"
        return packets

    @property
    def reset_index(self) -> int:
        """The index of the step that brought the server's hard reset."""
        for index, step in enumerate(self.steps):
            if step.side == "server" and any(
                p[0] >> 3 == P_CONTROL_HARD_RESET_SERVER_V2 for p in self.packets(step)
            ):
                return index
        raise AssertionError(f"{self.name}: no server reset in the capture")

    def server_wrap(self) -> Wrap:
        """The server's side of the wrapping, to read what the client sent."""
        return self._wrap(server=True)

    def client_wrap(self) -> Wrap:
        """The client's side of the wrapping, to read what the server sent."""
        return self._wrap(server=False)

    def _wrap(self, *, server: bool) -> Wrap:
        if self.wrap == "none":
            return Plain()
        assert self.key is not None
        if self.wrap == "tls-auth":  # the lab's server has key-direction 0, its clients 1
            return TlsAuthWrap(self.key, 0 if server else 1)
        return TlsCryptWrap(self.key[:256], 0 if server else 1)

    def random_bytes(self) -> Callable[[int], bytes]:
        """The recorded draws, in order."""
        return replay_draws(self.name, self.draws)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "proto": self.proto,
            "wrap": self.wrap,
            "key": None if self.key is None else self.key.hex(),
            "unix_time": self.unix_time,
            "draws": [draw.hex() for draw in self.draws],
            "ca": self.ca,
            "options": self.options,
            "peer_info": self.peer_info,
            "steps": [
                {"side": s.side, "at": s.at, "data": [d.hex() for d in s.data]} for s in self.steps
            ],
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> OpenVPNCapture:
        key = item["key"]
        steps = item["steps"]
        draws = item["draws"]
        assert isinstance(steps, list) and isinstance(draws, list)
        return cls(
            name=str(item["name"]),
            proto="tcp" if item["proto"] == "tcp" else "udp",
            wrap=item["wrap"],  # type: ignore[arg-type]
            key=None if key is None else bytes.fromhex(str(key)),
            unix_time=float(str(item["unix_time"])),
            draws=tuple(bytes.fromhex(draw) for draw in draws),
            ca=str(item["ca"]),
            options=str(item["options"]),
            peer_info=str(item["peer_info"]),
            steps=tuple(
                Step(s["side"], float(s["at"]), tuple(bytes.fromhex(d) for d in s["data"]))
                for s in steps
            ),
        )


@cache
def captures() -> dict[str, OpenVPNCapture]:
    """The captures in ``openvpn.json``, by name."""
    document = json.loads(VECTORS.read_text())
    return {item.name: item for item in map(OpenVPNCapture.from_json, document["captures"])}
