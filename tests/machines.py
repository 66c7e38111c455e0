"""What tests of protocol machines share."""

from __future__ import annotations

from vpnwatch.protocols.machine import Event, Machine


def drain(machine: Machine) -> list[Event]:
    """Every event the machine has ready, in order."""
    events = []
    while (event := machine.next_event()) is not None:
        events.append(event)
    return events
