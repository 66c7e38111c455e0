"""What tests of protocol machines share."""

from __future__ import annotations

from vpnwatch.protocols.machine import Event, Machine


class Clear:
    """A tunnel that adds nothing: the inner packet is the wire datagram."""

    def seal(self, packet: bytes) -> list[bytes]:
        return [packet]

    def open(self, data: bytes) -> list[bytes]:
        return [data]

    def flush(self) -> list[bytes]:
        return []


def drain(machine: Machine) -> list[Event]:
    """Every event the machine has ready, in order."""
    events = []
    while (event := machine.next_event()) is not None:
        events.append(event)
    return events
