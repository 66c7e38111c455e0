"""Exchanges with the real obfs4proxy (``obfs4.json``), and a reading of its hello that owes
nothing to vpnwatch.

A capture holds every input the client was given (its ephemeral key, each draw of randomness, the
padding length, the wall-clock time) and every byte each side sent, so a client built from it
must send the same bytes and accept the same answer. :class:`ServerHello` finds the parts of the
server's hello with the standard library's HMAC alone: tampering tests change the real server's
bytes, not bytes our own code made, so they cannot agree with the implementation by construction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.vectors.draws import replay_draws
from vpnwatch.protocols.obfs4 import ClientHandshake
from vpnwatch.protocols.obfs4.client import Obfs4Client
from vpnwatch.protocols.obfs4.echo import EchoCheck
from vpnwatch.protocols.obfs4.elligator import ElligatorKeypair

VECTORS = Path(__file__).with_name("obfs4.json")

# The hello's layout, from the obfs4 specification: Y' | AUTH | P_S | M_S | MAC_S.
KEY_LENGTH = 32
AUTH_LENGTH = 32
TAG_LENGTH = 16


def tag(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 truncated to 128 bits, as obfs4 computes its marks and MACs."""
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()[:TAG_LENGTH]


@dataclass(frozen=True)
class ServerHello:
    """A server's hello as found in its bytes: where it ends and the epoch hour its MAC is for."""

    mac_key: bytes
    raw: bytes
    epoch_hour: int

    @classmethod
    def find(cls, data: bytes, mac_key: bytes, unix_time: float) -> ServerHello | None:
        """The hello at the start of ``data`` (None until all of it is there)."""
        mark = tag(mac_key, data[:KEY_LENGTH])
        at = data.find(mark, KEY_LENGTH + AUTH_LENGTH)
        end = at + 2 * TAG_LENGTH
        if at == -1 or end > len(data):
            return None
        hour = int(unix_time // 3600)
        covered, received = data[: at + TAG_LENGTH], data[at + TAG_LENGTH : end]
        for candidate in (hour, hour - 1, hour + 1):
            if tag(mac_key, covered, str(candidate).encode()) == received:
                return cls(mac_key, data[:end], candidate)
        raise ValueError("the server hello's MAC verifies for no epoch hour near unix_time")

    def remac(self, body: bytes, hour: int | None = None) -> bytes:
        """``body`` (a hello less its MAC) with the MAC a server would send for ``hour``."""
        hour = self.epoch_hour if hour is None else hour
        return body + tag(self.mac_key, body, str(hour).encode())

    def with_auth_flipped(self) -> bytes:
        """The hello with one bit of AUTH changed and its MAC made right again: what a server
        without the bridge's private key, but with its public bridge line, can send."""
        body = bytearray(self.raw[:-TAG_LENGTH])
        body[KEY_LENGTH] ^= 1
        return self.remac(bytes(body))

    def with_mac_flipped(self) -> bytes:
        return self.raw[:-1] + bytes([self.raw[-1] ^ 1])


@dataclass(frozen=True)
class Obfs4Capture:
    """One client's conversation with the real bridge, with every input it was given."""

    name: str
    iat_mode: int
    echo: bool
    node_id: bytes
    public_key: bytes
    unix_time: float
    pad_length: int
    keypair: ElligatorKeypair
    draws: tuple[bytes, ...]
    transcript: tuple[tuple[str, bytes], ...]

    @property
    def mac_key(self) -> bytes:
        return self.public_key + self.node_id

    @property
    def request(self) -> bytes:
        return self.sent("client")[: KEY_LENGTH + self.pad_length + 2 * TAG_LENGTH]

    def sent(self, side: str) -> bytes:
        """Everything ``side`` ("client" or "server") sent, in order."""
        return b"".join(data for who, data in self.transcript if who == side)

    @property
    def hello(self) -> ServerHello:
        hello = ServerHello.find(self.sent("server"), self.mac_key, self.unix_time)
        assert hello is not None, f"{self.name}: no server hello in the capture"
        return hello

    def random_bytes(self, *, echo: bytes | None = None) -> Callable[[int], bytes]:
        """The recorded draws, in order (the echo's replaced by ``echo`` if given)."""
        return replay_draws(self.name, self.draws if echo is None else (*self.draws[:-1], echo))

    def client(self, *, echo_draw: bytes | None = None) -> Obfs4Client:
        """A client given the recorded inputs; ``echo_draw`` replaces what it echoes."""
        random_bytes = self.random_bytes(echo=echo_draw)
        return Obfs4Client(
            self.node_id,
            self.public_key,
            unix_time=self.unix_time,
            inner=EchoCheck(random_bytes) if self.echo else None,
            random_bytes=random_bytes,
            keypair=self.keypair,
            pad_length=self.pad_length,
        )

    def handshake(self, *, node_id: bytes | None = None) -> ClientHandshake:
        """The handshake alone, in the state of the recorded client's."""
        return ClientHandshake(
            node_id or self.node_id,
            self.public_key,
            now=self.unix_time,
            random_bytes=self.random_bytes(),
            keypair=self.keypair,
            pad_length=self.pad_length,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "iat_mode": self.iat_mode,
            "echo": self.echo,
            "node_id": self.node_id.hex(),
            "public_key": self.public_key.hex(),
            "unix_time": self.unix_time,
            "pad_length": self.pad_length,
            "keypair": {
                "private_key": self.keypair.private_key.hex(),
                "public_key": self.keypair.public_key.hex(),
                "representative": self.keypair.representative.hex(),
            },
            "draws": [draw.hex() for draw in self.draws],
            "transcript": [[side, data.hex()] for side, data in self.transcript],
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> Obfs4Capture:
        keypair = item["keypair"]
        assert isinstance(keypair, dict)
        return cls(
            name=str(item["name"]),
            iat_mode=int(str(item["iat_mode"])),
            echo=bool(item["echo"]),
            node_id=bytes.fromhex(str(item["node_id"])),
            public_key=bytes.fromhex(str(item["public_key"])),
            unix_time=float(str(item["unix_time"])),
            pad_length=int(str(item["pad_length"])),
            keypair=ElligatorKeypair(**{k: bytes.fromhex(v) for k, v in keypair.items()}),
            draws=tuple(bytes.fromhex(draw) for draw in item["draws"]),  # type: ignore[attr-defined]
            transcript=tuple(
                (side, bytes.fromhex(data))
                for side, data in item["transcript"]  # type: ignore[attr-defined]
            ),
        )


@cache
def captures() -> dict[str, Obfs4Capture]:
    """The captures in ``obfs4.json``, by name."""
    document = json.loads(VECTORS.read_text())
    return {capture.name: capture for capture in map(Obfs4Capture.from_json, document["captures"])}
