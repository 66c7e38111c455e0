"""The real monitor, run in this process on jobs made in code, with its probes observed.

:class:`ProbeLog` wraps the probe functions the monitor is given, to record when each probe of
each target starts (on the event loop's clock, once the scheduler's concurrency slot is taken) and
what it found. The scheduler offers no such hook; a probe function is the one seam the monitor
exposes, and everything it does around the probe stays as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpnwatch.config import Config, Settings
from vpnwatch.jobs import Job
from vpnwatch.monitor import Monitor
from vpnwatch.probes import Probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import Result
from vpnwatch.targets.base import TargetBase

#: How long a cancelled monitor may take to stop, and how long before stragglers are cancelled.
STOP_SECONDS = 30.0
STOP_GRACE = 2.0
#: The scheduler names each target's task "probe NAME".
_SCHEDULER_TASK_PREFIX = "probe "


@dataclass
class ProbeLog:
    """Every probe's start time and Result, by target name."""

    starts: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    results: defaultdict[str, list[Result]] = field(default_factory=lambda: defaultdict(list))

    def wrap(self, probes: Mapping[str, Probe]) -> dict[str, Probe]:
        return {name: self._observed(probe) for name, probe in probes.items()}

    def _observed(self, probe: Probe) -> Callable[[Any, float], Awaitable[Result]]:
        async def observed(target: TargetBase, timeout: float) -> Result:
            self.starts[target.name].append(asyncio.get_running_loop().time())
            result = await probe(target, timeout)
            self.results[target.name].append(result)
            return result

        return observed

    def probes_started(self) -> int:
        return sum(map(len, self.starts.values()))

    def outcomes(self) -> dict[str, int]:
        """How many probes of each protocol ended how: ``wireguard ok``, ``obfs4 refused``..."""
        return dict(
            Counter(
                f"{result.protocol} {result.failure or 'ok'}"
                for results in self.results.values()
                for result in results
            )
        )

    def lateness(self, interval: float, since: float) -> list[float]:
        """How late each probe started after ``since``, against its target's best start.

        With jitter off, a target's k-th probe is due at its first due time plus k intervals. That
        first due time (a random offset) cannot be seen from outside, so each start is compared
        with the target's earliest-relative one, ``min_j (start_j - j * interval)``, which is left
        out. The figure is a lower bound: a target whose every start was late by the same amount
        shows none of it.
        """
        late = []
        for starts in self.starts.values():
            offsets = [start - k * interval for k, start in enumerate(starts)]
            best = min(range(len(offsets)), key=offsets.__getitem__)
            late += [
                offset - offsets[best]
                for k, offset in enumerate(offsets)
                if k != best and starts[k] >= since
            ]
        return late


@dataclass
class Run:
    """What a monitor run leaves to read once it has stopped."""

    log: ProbeLog
    #: Tasks that were still running after the monitor had been cancelled (see :func:`stop`).
    outliving_cancel: int = 0


@contextlib.asynccontextmanager
async def monitor_running(
    targets: Sequence[TargetBase], *, interval: float, timeout: float, jitter: float = 0.1
) -> AsyncIterator[Run]:
    """The monitor probing ``targets`` in this event loop, until the block ends."""
    settings = Settings(listen="127.0.0.1:0", interval=interval, timeout=timeout, jitter=jitter)
    jobs = tuple(Job(target, interval, timeout, "benchmark") for target in targets)
    run = Run(ProbeLog())
    monitor = Monitor(lambda: Config(settings, jobs), run.log.wrap(PROBES))
    task = asyncio.create_task(monitor.run())
    try:
        yield run
    finally:
        run.outliving_cancel = await stop(task)


async def stop(monitor: asyncio.Task[None]) -> int:
    """Cancel the monitor as a shutdown does; returns how many tasks outlived that cancellation.

    On Python 3.11, ``asyncio.wait_for`` drops a cancellation that arrives as the awaited read
    completes (CPython gh-86296), and the probe goes on as if nothing happened; the scheduler then
    waits for it forever. Tasks still running after a grace period are cancelled again, and
    counted, so that the run ends and the report shows it.
    """
    loop = asyncio.get_running_loop()
    monitor.cancel()
    await asyncio.wait([monitor], timeout=STOP_GRACE)
    outliving: set[asyncio.Task[Any]] = set()
    deadline = loop.time() + STOP_SECONDS
    while not monitor.done() and loop.time() < deadline:
        stuck = {
            task
            for task in asyncio.all_tasks()
            if not task.done() and task.get_name().startswith(_SCHEDULER_TASK_PREFIX)
        }
        outliving |= stuck
        for task in stuck:
            task.cancel()
        await asyncio.wait([monitor], timeout=STOP_GRACE)
    if not monitor.done():
        raise RuntimeError(f"the monitor did not stop within {STOP_SECONDS:g} s of cancellation")
    with contextlib.suppress(asyncio.CancelledError):
        await monitor
    return len(outliving)
