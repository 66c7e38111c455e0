"""What the obfs4 machines report: frozen events, and the sentinel for "feed me more bytes"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


class NeedData:
    """Sentinel: nothing can happen until more bytes arrive from the peer."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class HelloAccepted:
    """The server proved it holds the bridge's key; ``trailing`` is the first frames' bytes."""

    key_material: bytes = field(repr=False)
    trailing: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Application bytes the peer sent through the session."""

    data: bytes
