"""Capture ``openvpn.json``: the OpenVPN client, its inputs fixed, against the real openvpn server.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_openvpn``. Each capture
runs :class:`OpenVPNClient` through the probe driver against Debian's ``openvpn`` server, with
no wrapping, tls-auth, tls-crypt and tls-crypt-v2, over UDP and TCP. The client's randomness
(session id, key-method randomness) is drawn from a fixed seed and its Unix time is a fixed
constant, so a re-run sends the same first packets. The capture demands a complete handshake
(the server accepted everything the client sent) and keeps the exchange up to the server's hard
reset, with the client's next packet. Each capture's wrapping key is generated for the lab run
and used nowhere else; server keys are not kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.vectors.openvpn import VECTORS, OpenVPNCapture, Step
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import OpenVPNLab, RunningServer, ServerVariant
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.openvpn import client_config
from vpnwatch.protocols.machine import Machine
from vpnwatch.protocols.openvpn.client import OpenVPNClient
from vpnwatch.protocols.openvpn.wrappers import make_wrapper

TIMEOUT = 10.0
#: The Unix time every capture's client is given (tls-auth/tls-crypt packet ids carry it).
UNIX_TIME = 1_800_000_000.0
VARIANTS = (
    ServerVariant("udp-plain"),
    ServerVariant("udp-tls-auth", wrap="tls-auth"),
    ServerVariant("udp-tls-crypt", wrap="tls-crypt"),
    ServerVariant("udp-tls-crypt-v2", wrap="tls-crypt-v2"),
    ServerVariant("tcp-plain", proto="tcp"),
    ServerVariant("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
)


class Recording:
    """A machine that writes down what passes between the driver and the client it wraps.

    The client sees time from 0.0 at :meth:`start`, so that the replay can give it the very
    same ``now`` values.
    """

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.origin = 0.0
        self.steps: list[Step] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.machine, name)

    def start(self, now: float) -> None:
        self.origin = now
        self.machine.start(0.0)

    def data_to_send(self, now: float) -> list[bytes]:
        at = now - self.origin
        out = self.machine.data_to_send(at)
        if out:
            self.steps.append(Step("client", at, tuple(out)))
        return out

    def receive(self, data: bytes, now: float) -> None:
        at = now - self.origin
        if data:
            self.steps.append(Step("server", at, (data,)))
        self.machine.receive(data, at)

    def timer(self) -> float | None:
        wake = self.machine.timer()
        return None if wake is None else wake + self.origin

    def handle_timer(self, now: float) -> None:
        self.machine.handle_timer(now - self.origin)


def fixed_random(name: str) -> tuple[Callable[[int], bytes], list[bytes]]:
    """Draws from a seed named after the capture, and the list they are recorded in."""
    draws: list[bytes] = []

    def random_bytes(length: int) -> bytes:
        seed = f"vpnwatch openvpn vector {name} draw {len(draws)}".encode()
        draws.append(hashlib.shake_256(seed).digest(length))
        return draws[-1]

    return random_bytes, draws


async def capture(lab: OpenVPNLab, server: RunningServer, directory: Path) -> OpenVPNCapture:
    variant = server.variant
    config_path = lab.write_client_file(server, directory / f"{variant.name}.ovpn")
    (target,) = load_ovpn(config_path)
    key = target.tls_key.get_secret_value() if target.tls_key else None
    config = client_config(target)
    random_bytes, draws = fixed_random(variant.name)
    wrapper = make_wrapper(target.tls_wrap, key, direction=target.key_direction, digest=target.auth)
    recording = Recording(
        OpenVPNClient(config, wrapper, unix_time=UNIX_TIME, random_bytes=random_bytes)
    )
    result = await ProbeSpec(machine=lambda _: recording).probe()(target, TIMEOUT)
    if not result.ok:
        raise SystemExit(f"{variant.name}: the probe of the real server failed: {result}")
    partial = OpenVPNCapture(
        name=variant.name,
        proto="tcp" if variant.proto == "tcp" else "udp",
        wrap=variant.wrap,
        key=key,
        unix_time=UNIX_TIME,
        draws=tuple(draws),
        ca=lab.pki.ca,
        options=config.options,
        peer_info=config.peer_info,
        steps=tuple(recording.steps),
    )
    # Up to the server's reset, then the client's next packet (its ClientHello, with the ACK).
    after = partial.steps[partial.reset_index + 1 :]
    next_client = next(i for i, step in enumerate(after) if step.side == "client")
    keep = partial.reset_index + 1 + next_client + 1
    return dataclasses.replace(partial, steps=partial.steps[:keep])


async def capture_all(lab: OpenVPNLab, directory: Path) -> list[OpenVPNCapture]:
    return [await capture(lab, lab.servers[v.name], directory) for v in VARIANTS]


def main() -> None:
    with Namespace() as namespace, tempfile.TemporaryDirectory() as work:
        lab = OpenVPNLab(namespace, Path(work))
        lab.start(VARIANTS)
        captures = asyncio.run(capture_all(lab, Path(work)))
    write_vectors(
        VECTORS,
        "OpenVPN exchanges with the real server up to its hard reset; written by "
        "python -m tests.vectors.capture_openvpn, replayed by tests/protocols/openvpn",
        debian_versions("openvpn"),
        captures,
    )


if __name__ == "__main__":
    main()
