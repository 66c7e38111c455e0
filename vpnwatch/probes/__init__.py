"""Probe drivers, and the registry the scheduler looks protocols up in.

A probe is ``async def probe(target, timeout) -> Result``; a probe of a protocol with a data plane
also takes ``tunnel=plan`` (a :class:`~vpnwatch.quality.TunnelPlan`) and then tests the tunnel.
It never raises for anything the
network or the peer did: every such outcome is a Result with a Failure. An exception out of a probe
is a bug in vpnwatch, which the scheduler logs and counts as an internal error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vpnwatch.quality import TunnelPlan
from vpnwatch.result import Failure, Result
from vpnwatch.targets.base import TargetBase

Probe = Callable[..., Awaitable[Result]]

#: How long past its own timeout a probe may run before it is cut off.
OVERRUN_GRACE = 1.0


async def run_probe(
    probe: Probe, target: TargetBase, timeout: float, tunnel: TunnelPlan | None = None
) -> Result:
    """Run one probe (a tunnel test with ``tunnel``) with a hard deadline; exceptions (bugs)
    propagate to the caller."""
    try:
        async with asyncio.timeout(timeout + OVERRUN_GRACE):
            if tunnel is None:
                return await probe(target, timeout)
            return await probe(target, timeout, tunnel=tunnel)
    except TimeoutError:
        return Result(
            target=target.name,
            protocol=target.protocol,
            ok=False,
            failure=Failure.TIMEOUT,
            stage="",
            stages=(),
            duration=timeout + OVERRUN_GRACE,
            detail="the probe overran its timeout and was cut off",
        )
