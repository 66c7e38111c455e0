"""Capture ``wireguard.json``: the WireGuard initiator, its inputs fixed, against the real wireguard-go.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_wireguard``. Each
capture runs :class:`WireGuardInitiator` through the probe driver against the lab's wireguard-go,
with keys, randomness and timestamps derived from fixed labels (so our side's bytes are the same
every time it is made), and writes down those inputs and each datagram either side sent. The
server's datagrams are wireguard-go's own; the unit tests replay them with no network.

Three captures: a plain handshake, one with a preshared key, and one where the server, under
load, first answers with a cookie reply. wireguard-go is under load for a second after it finds
an eighth of its handshake queue (1024) waiting; a burst of initiations from another socket fills
it, and for that second it answers any initiation without a valid mac2 with a cookie. Every
capture also checks that the server recorded the handshake (``wg show``), which it does only
once our keepalive decrypted under the keys both sides derived.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket

from tests.vectors.wireguard import VECTORS, WireGuardCapture
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.wireguard import (
    MESSAGE_COOKIE_REPLY,
    NoiseHandshake,
    WireGuardInitiator,
    public_key_of,
    tai64n,
)
from vpnwatch.targets.wireguard import WireGuardTarget

TIMEOUT = 10.0
#: The wall clock every capture's timestamps start from: 2026-12-01 00:00:00 UTC.
UNIX_NS = 1_796_083_200 * 10**9
#: Initiations in a burst that puts the server under load, and how many bursts to try.
BURST = 1000
ATTEMPTS = 5
#: How long the server must send nothing for its burst to count as worked through.
QUIET = 0.05


def seeded(label: str, length: int = 32) -> bytes:
    """Fixed bytes for ``label``: the same inputs every time a capture is made."""
    return hashlib.blake2s(label.encode(), digest_size=length).digest()


def key_pair(label: str) -> KeyPair:
    private = seeded(label)
    return KeyPair(private, public_key_of(private))


class Inputs:
    """The initiator's randomness and timestamps, drawn from ``label`` and kept."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.draws: list[bytes] = []
        self.timestamps: list[bytes] = []

    def random_bytes(self, length: int) -> bytes:
        self.draws.append(seeded(f"{self.label}/draw/{len(self.draws)}", length))
        return self.draws[-1]

    def timestamp(self) -> bytes:
        self.timestamps.append(tai64n(UNIX_NS + len(self.timestamps) * 1_000_000))
        return self.timestamps[-1]


class Recording(WireGuardInitiator):
    """The initiator, writing down each datagram that passes between it and the driver."""

    def __init__(self, handshake: NoiseHandshake, inputs: Inputs) -> None:
        super().__init__(handshake, timestamps=inputs.timestamp, random_bytes=inputs.random_bytes)
        self.transcript: list[tuple[str, bytes]] = []

    def receive(self, data: bytes, now: float) -> None:
        self.transcript.append(("server", data))
        super().receive(data, now)

    def data_to_send(self, now: float) -> list[bytes]:
        out = super().data_to_send(now)
        self.transcript += [("client", datagram) for datagram in out]
        return out


async def capture(
    name: str, server: WireGuardServer, label: str, preshared_key: bytes | None
) -> WireGuardCapture:
    client = key_pair(f"{label}/client")
    server.add_peer(client.public, preshared_key)
    inputs = Inputs(label)
    recording = Recording(NoiseHandshake(client.private, server.public_key, preshared_key), inputs)
    target = WireGuardTarget(
        name=name,
        host=server.namespace.ip,
        port=server.port,
        private_key=client.private_b64,
        public_key=server.keys.public_b64,
        preshared_key=preshared_key,
    )
    result = await ProbeSpec(machine=lambda _: recording).probe()(target, TIMEOUT)
    if not result.ok:
        raise SystemExit(f"{name}: the probe of the real server failed: {result}")
    if not await recorded(server, client):
        raise SystemExit(f"{name}: the server never recorded the handshake: keepalive refused")
    return WireGuardCapture(
        name=name,
        client_private=client.private,
        server_private=server.keys.private,
        server_public=server.public_key,
        preshared_key=preshared_key,
        draws=tuple(inputs.draws),
        timestamps=tuple(inputs.timestamps),
        transcript=tuple(recording.transcript),
    )


async def recorded(server: WireGuardServer, client: KeyPair) -> bool:
    for _ in range(100):
        if server.latest_handshake(client.public):
            return True
        await asyncio.sleep(0.05)
    return False


def overload(server: WireGuardServer) -> None:
    """Put the server under load: it answers initiations without mac2 with cookie replies.

    Bursts of initiations with a valid mac1 (from a key the server does not know) go out until
    the server answers one with a cookie reply (its workers sometimes keep up with a burst). It
    returns once the server has gone quiet, having worked through the burst: an initiation sent
    sooner could be lost from its full socket buffer. The server stays under load a second more.
    """
    load = NoiseHandshake(seeded("load/client"), server.public_key).create_initiation(
        tai64n(UNIX_NS), ephemeral_private=seeded("load/ephemeral"), sender_index=1
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((server.namespace.ip, server.port))
        sock.settimeout(QUIET)
        for _ in range(ATTEMPTS):
            for _ in range(BURST):
                sock.send(load)
            cookies = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    cookies += sock.recv(BURST)[0] == MESSAGE_COOKIE_REPLY
            if cookies:
                return
    raise RuntimeError(f"{ATTEMPTS} bursts of {BURST} initiations did not load the server")


def cookie_capture(server: WireGuardServer) -> WireGuardCapture:
    """A capture whose first initiation the server, under load, answered with a cookie reply."""
    overload(server)
    made = asyncio.run(capture("cookie", server, "cookie", None))
    if not any(data[0] == MESSAGE_COOKIE_REPLY for data in made.sent("server")):
        raise SystemExit("cookie: the server, under load, answered without a cookie reply")
    return made


def main() -> None:
    with Namespace() as namespace, WireGuardServer(namespace, keys=key_pair("server")) as server:
        captures = [
            asyncio.run(capture("handshake", server, "handshake", None)),
            asyncio.run(capture("preshared-key", server, "preshared-key", seeded("psk"))),
            cookie_capture(server),
        ]
    write_vectors(
        VECTORS,
        "WireGuard handshakes with the real server; written by "
        "python -m tests.vectors.capture_wireguard, replayed by "
        "tests/protocols/test_wireguard_vectors.py",
        debian_versions("wireguard-go"),
        captures,
    )


if __name__ == "__main__":
    main()
