"""Runs every job on its own schedule. Knows jobs, probe functions and Results, not protocols.

Each target gets one loop: a random initial offset spreads targets over their interval (a thousand
targets loaded at once must not probe in one burst), later probes come every interval ±jitter, and a
global limit caps how many probes are in flight, across reloads too. A probe that overruns its
timeout is cut off; a probe that could not run on this host (a :class:`LocalError`) goes to
``on_local_error``, and one that raises anything else is a bug, reported through ``on_error``;
either way no Result is made and the target keeps its schedule.
``on_start`` hears how late each probe started against its due time: a monitor that cannot keep
up (too many targets for its concurrency cap or its CPU) shows there first.

A job with a tunnel plan also gets tunnel tests, on the plan's own, longer interval: when one is
due, the loop's next turn runs it in place of a plain probe (it handshakes too). The first comes
at a random offset within that interval, as first probes do; while the last one failed or found
the tunnel degraded, the next comes after the job's ordinary interval, so a recovery is seen as
soon as a handshake would be.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from vpnwatch.jobs import Job
from vpnwatch.probes import Probe, run_probe
from vpnwatch.quality import TunnelPlan
from vpnwatch.result import LocalError, Result

log = logging.getLogger(__name__)


#: Probe start times are rounded to a grid, so that probes due within one tick start in one turn
#: of the event loop. A probe started alone pays for waking the loop, the cold caches of an idle
#: process and its own loop iterations; started with others, it shares them, and their replies
#: come back together too. But they start one after another, so the last of a tick starts later
#: by the others' first steps. A tick therefore gathers about this many probes at the monitor's
#: probe rate: measured at 100 verified WireGuard probes a second, 5 per tick (a 50 ms tick) saved
#: about 40 % of a probe's CPU against none, and 16 another ~10 % (docs/benchmarks.md).
TICK_BATCH = 16
#: The longest tick, for monitors with few probes a second; far inside the jitter of any real
#: interval (±10 % of 60 s is 6 s). Lateness is measured from the tick a probe was due on, so the
#: rounding itself is not counted as late.
TICK = 0.25
#: The tick never exceeds this share of a job's interval (tests use intervals of milliseconds).
MAX_TICK_SHARE = 0.05


def _on_tick(when: float, tick: float) -> float:
    """``when`` rounded to the nearest multiple of ``tick`` on the loop's clock."""
    return round(when / tick) * tick


class Limiter:
    """A semaphore whose size can change while it is held.

    A reload must not replace the limit with a fresh one: probes holding the old one would no
    longer count, and the cap would be exceeded by as many probes as were in flight.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    def resize(self, limit: int) -> None:
        self._limit = limit
        self._wake()

    async def __aenter__(self) -> None:
        if self._in_use >= self._limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # its slot was counted for it by whoever woke it
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # woken, then cancelled: hand the slot on
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        else:
            self._in_use += 1

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()

    def _release(self) -> None:
        self._in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_use < self._limit:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled, its task not yet told: it takes no slot
                continue
            self._in_use += 1
            waiter.set_result(None)


class Scheduler:
    """Owns one task per job inside a TaskGroup; ``update`` swaps the job list live."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        on_result: Callable[[Job, Result], None],
        on_error: Callable[[Job, BaseException], None],
        *,
        on_local_error: Callable[[Job, LocalError], None],
        on_start: Callable[[float], None] = lambda lateness: None,
        concurrency: int,
        jitter: float,
        rng: random.Random | None = None,
    ) -> None:
        self._probes = probes
        self._on_result = on_result
        self._on_error = on_error
        self._on_local_error = on_local_error
        self._on_start = on_start
        self._limiter = Limiter(concurrency)
        self._jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - spreading load, not secrecy
        self._jobs: dict[str, Job] = {}
        #: Probes a second the jobs make: what sets the tick.
        self._rate = 0.0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None

    async def run(self, jobs: Sequence[Job]) -> None:
        """Probe ``jobs`` until cancelled; cancellation stops every task before returning."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self.update(jobs)
            try:
                await asyncio.Event().wait()
            finally:
                self._group = None
                for task in self._tasks.values():
                    task.cancel()
                self._tasks.clear()

    def update(
        self, jobs: Sequence[Job], *, concurrency: int | None = None, jitter: float | None = None
    ) -> None:
        """Start new jobs, stop removed or changed ones; unchanged jobs keep their schedule."""
        if self._group is None:
            raise RuntimeError("the scheduler is not running")
        if concurrency is not None:
            self._limiter.resize(concurrency)
        if jitter is not None:
            self._jitter = jitter
        wanted = {job.name: job for job in jobs}
        for name, job in list(self._jobs.items()):
            if wanted.get(name) != job:
                self._tasks.pop(name).cancel()
                del self._jobs[name]
        for name, job in wanted.items():
            if name not in self._jobs:
                self._jobs[name] = job
                self._tasks[name] = self._group.create_task(self._loop(job), name=f"probe {name}")
        self._rate = sum(1 / job.interval for job in self._jobs.values())

    @property
    def jobs(self) -> Sequence[Job]:
        return list(self._jobs.values())

    @property
    def in_flight(self) -> int:
        """Probes running now."""
        return self._limiter.in_use

    def _tick(self, job: Job) -> float:
        """The grid ``job``'s starts are rounded to, for the monitor's probe rate of now."""
        batch = TICK_BATCH / self._rate if self._rate > 0 else TICK
        return min(TICK, job.interval * MAX_TICK_SHARE, batch)

    async def _loop(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        next_at = _on_tick(loop.time() + self._rng.uniform(0, job.interval), self._tick(job))
        tunnel_at = math.inf
        if job.tunnel is not None:
            tunnel_at = next_at + self._rng.uniform(0, job.tunnel.interval)
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            tunnel = job.tunnel if next_at >= tunnel_at else None
            async with self._limiter:
                self._on_start(loop.time() - next_at)
                result = await self._probe_once(job, tunnel)
            if tunnel is not None:
                again = result is not None and (not result.ok or bool(result.degraded))
                spread = 1 + self._rng.uniform(-self._jitter, self._jitter)
                tunnel_at = next_at + (job.interval if again else tunnel.interval) * spread
            if result is not None:
                try:
                    self._on_result(job, result)
                except Exception as exc:  # a sink's bug must not end this target's loop
                    self._on_error(job, exc)
            spread = 1 + self._rng.uniform(-self._jitter, self._jitter)
            # After an overrun, start afresh from now rather than firing a burst to catch up.
            next_at = _on_tick(max(next_at + job.interval * spread, loop.time()), self._tick(job))

    async def _probe_once(self, job: Job, tunnel: TunnelPlan | None) -> Result | None:
        """A probe of ``job``, or its tunnel test with ``tunnel``; None when it made no Result."""
        probe = self._probes[job.target.protocol]
        try:
            if tunnel is not None:
                return await run_probe(probe, job.target, tunnel.timeout, tunnel)
            return await run_probe(probe, job.target, job.timeout)
        except LocalError as exc:
            self._on_local_error(job, exc)
        except Exception as exc:  # a bug in one probe must not stop the others
            self._on_error(job, exc)
        return None
