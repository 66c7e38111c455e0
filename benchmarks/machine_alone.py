"""WireGuard's machine alone: the sans-IO handshake with no socket, no event loop, no driver.

One exchange with the lab's wireguard-go is captured, with the machine's random draws recorded
and its timestamp fixed; each round then builds a fresh machine that draws the same bytes, so it
sends the same initiation, and feeds it the captured response, which it verifies as it verified
the live one (a round that does not complete raises). The figure is what the protocol's own code
costs, its X25519 work included, so that between the floor and a probe the machine's share is a
number.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from benchmarks.measure import measured
from vpnwatch.probes.wireguard import handshake_of
from vpnwatch.protocols.machine import Completed, Failed
from vpnwatch.protocols.wireguard import INITIATION_INTERVAL, WireGuardInitiator, tai64n
from vpnwatch.targets.wireguard import WireGuardTarget

_REPLY_SECONDS = 5.0


def _machine(
    target: WireGuardTarget, timestamp: bytes, random_bytes: Callable[[int], bytes]
) -> WireGuardInitiator:
    return WireGuardInitiator(
        handshake_of(target), timestamps=lambda: timestamp, random_bytes=random_bytes
    )


def _concluded(machine: WireGuardInitiator) -> bool:
    """Whether the machine's events end in a verified handshake."""
    while (event := machine.next_event()) is not None:
        if isinstance(event, Completed | Failed):
            return isinstance(event, Completed)
    return False


def _capture(target: WireGuardTarget, timestamp: bytes) -> tuple[list[bytes], bytes]:
    """The random draws of a live handshake with the server, and the response it verified."""
    draws: list[bytes] = []

    def recorded(size: int) -> bytes:
        draws.append(os.urandom(size))
        return draws[-1]

    time.sleep(INITIATION_INTERVAL)  # the server drops a key's initiations that come too fast
    machine = _machine(target, timestamp, recorded)
    machine.start(time.monotonic())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(_REPLY_SECONDS)
        sock.connect((target.host, target.port))
        for datagram in machine.data_to_send(time.monotonic()):
            sock.send(datagram)
        response = sock.recv(2048)
    machine.receive(response, time.monotonic())
    if not _concluded(machine):
        raise RuntimeError(f"{target.name}: the live handshake did not verify")
    return draws, response


def wireguard_machine_alone(target: WireGuardTarget, rounds: int) -> float:
    """CPU seconds of one handshake in the machine alone: initiation made, response verified."""
    timestamp = tai64n(time.time_ns())  # newer than any the server has seen from this key
    draws, response = _capture(target, timestamp)

    def handshake() -> None:
        machine = _machine(target, timestamp, _replay(draws))
        machine.start(0.0)
        machine.data_to_send(0.0)
        machine.receive(response, 0.0)
        if not _concluded(machine):
            raise RuntimeError(f"{target.name}: the replayed response did not verify")

    handshake()  # warm
    with measured() as usage:
        for _ in range(rounds):
            handshake()
    return usage.cpu / rounds


def _replay(draws: list[bytes]) -> Callable[[int], bytes]:
    """The capture's draws again, in their order (each of the size asked for then)."""
    remaining = iter(draws)

    def replayed(size: int) -> bytes:
        draw = next(remaining)
        if len(draw) != size:
            raise RuntimeError(f"the replay drew {size} bytes where the capture drew {len(draw)}")
        return draw

    return replayed
