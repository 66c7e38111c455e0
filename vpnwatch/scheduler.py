"""Runs every job on its own schedule. Knows jobs, probe functions and Results, not protocols.

Each target gets one loop: a random initial offset spreads targets over their interval (a thousand
targets loaded at once must not probe in one burst), later probes come every interval ±jitter, and a
global semaphore caps how many probes are in flight. A probe that overruns its timeout is cut off; a
probe that raises is a bug, reported through ``on_error``, and its target keeps its schedule.
``on_start`` hears how late each probe started against its due time: a monitor that cannot keep
up (too many targets for its concurrency cap or its CPU) shows there first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence

from vpnwatch.config import Job
from vpnwatch.probes import Probe, run_probe
from vpnwatch.result import Result

log = logging.getLogger(__name__)


class Scheduler:
    """Owns one task per job inside a TaskGroup; ``update`` swaps the job list live."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        on_result: Callable[[Job, Result], None],
        on_error: Callable[[Job, BaseException], None],
        *,
        on_start: Callable[[float], None] = lambda lateness: None,
        concurrency: int,
        jitter: float,
        rng: random.Random | None = None,
    ) -> None:
        self._probes = probes
        self._on_result = on_result
        self._on_error = on_error
        self._on_start = on_start
        self._semaphore = asyncio.Semaphore(concurrency)
        self._jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - spreading load, not secrecy
        self._jobs: dict[str, Job] = {}
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
            self._semaphore = asyncio.Semaphore(concurrency)
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

    @property
    def jobs(self) -> Sequence[Job]:
        return list(self._jobs.values())

    async def _loop(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self._rng.uniform(0, job.interval)
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            async with self._semaphore:
                self._on_start(loop.time() - next_at)
                result = await self._probe_once(job)
            if result is not None:
                self._on_result(job, result)
            spread = 1 + self._rng.uniform(-self._jitter, self._jitter)
            # After an overrun, start afresh from now rather than firing a burst to catch up.
            next_at = max(next_at + job.interval * spread, loop.time())

    async def _probe_once(self, job: Job) -> Result | None:
        try:
            return await run_probe(self._probes[job.target.protocol], job.target, job.timeout)
        except Exception as exc:  # a bug in one probe must not stop the others
            self._on_error(job, exc)
            return None
