"""Capture ``obfs4.json``: the obfs4 client, its randomness fixed, against the real obfs4proxy.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_obfs4``. Each capture
runs :class:`Obfs4Client` through the probe driver against the lab's obfs4proxy and writes down
the client's inputs (its ephemeral keypair, every draw of randomness, the padding length, the
time) and the bytes each side sent, in the order they went. The server's bytes are obfs4proxy's
own; the unit tests replay them with no network. Re-run it only when the format changes: the
captures stay valid forever, since the client is given the epoch hour they were made in.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from tests.vectors.obfs4 import VECTORS, Obfs4Capture
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge, Obfs4Server
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.machine import Machine
from vpnwatch.protocols.obfs4.client import Obfs4Client
from vpnwatch.protocols.obfs4.echo import EchoCheck
from vpnwatch.protocols.obfs4.elligator import generate_keypair
from vpnwatch.targets.obfs4 import Obfs4Target

TIMEOUT = 10.0
#: name → (iat-mode, echo, padding length)
PLAN = {
    "handshake": (0, False, 85),
    "echo": (0, True, 1000),
    "echo-iat1": (1, True, 4000),
}


class Recording:
    """A machine that writes down what passes between the driver and the one it wraps."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.transcript: list[tuple[str, bytes]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.machine, name)

    def receive(self, data: bytes, now: float) -> None:
        if data:
            self.transcript.append(("server", data))
        self.machine.receive(data, now)

    def data_to_send(self, now: float) -> list[bytes]:
        out = self.machine.data_to_send(now)
        if out:
            self.transcript.append(("client", b"".join(out)))
        return out


def recording_random() -> tuple[Callable[[int], bytes], list[bytes]]:
    draws: list[bytes] = []

    def random_bytes(length: int) -> bytes:
        draws.append(os.urandom(length))
        return draws[-1]

    return random_bytes, draws


async def capture(name: str, bridge: Obfs4Bridge, echo: bool, pad_length: int) -> Obfs4Capture:
    identity = bridge.identity
    keypair = generate_keypair()
    random_bytes, draws = recording_random()
    unix_time = float(int(time.time()))
    recording = Recording(
        Obfs4Client(
            identity.node_id,
            identity.public_key,
            unix_time=unix_time,
            inner=EchoCheck(random_bytes) if echo else None,
            random_bytes=random_bytes,
            keypair=keypair,
            pad_length=pad_length,
        )
    )
    target = Obfs4Target(
        name=name,
        host=bridge.host,
        port=bridge.port,
        node_id=identity.node_id,
        public_key=identity.public_key,
    )
    result = await ProbeSpec(machine=lambda _: recording).probe()(target, TIMEOUT)
    if not result.ok:
        raise SystemExit(f"{name}: the probe of the real bridge failed: {result}")
    return Obfs4Capture(
        name=name,
        iat_mode=bridge.iat_mode,
        echo=echo,
        node_id=identity.node_id,
        public_key=identity.public_key,
        unix_time=unix_time,
        pad_length=pad_length,
        keypair=keypair,
        draws=tuple(draws),
        transcript=tuple(recording.transcript),
    )


def main() -> None:
    captures = []
    with Namespace() as namespace:
        for iat_mode in sorted({iat for iat, _, _ in PLAN.values()}):
            with Obfs4Server(namespace, iat_mode=iat_mode, port=4443 + iat_mode) as bridge:
                for name, (mode, echo, pad_length) in PLAN.items():
                    if mode == iat_mode:
                        captures.append(asyncio.run(capture(name, bridge, echo, pad_length)))
    write_vectors(
        VECTORS,
        "obfs4 exchanges with the real server; written by "
        "python -m tests.vectors.capture_obfs4, replayed by tests/protocols/obfs4",
        debian_versions("obfs4proxy"),
        captures,
    )


if __name__ == "__main__":
    main()
