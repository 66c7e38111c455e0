"""Probe drivers, and the registry the scheduler looks protocols up in.

A probe is ``async def probe(target, timeout) -> Result``. It never raises for anything the
network or the peer did: every such outcome is a Result with a Failure. An exception out of a probe
is a bug in vpnwatch, which the scheduler logs and counts as an internal error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from vpnwatch.result import Result

Probe = Callable[[Any, float], Awaitable[Result]]
