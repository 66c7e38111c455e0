"""The scheduler against plain probe functions: it knows nothing of protocols, so none are needed.

Every test runs on looptime's fake event-loop clock: ``asyncio.sleep`` moves time forward at once,
so the schedules below are exact and nothing here waits in real time.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from tests.unit.test_metrics import job as make_job
from vpnwatch.jobs import Job
from vpnwatch.result import LocalError, LocalReason, Result
from vpnwatch.scheduler import MAX_TICK_SHARE, TICK, TICK_BATCH, Limiter, Scheduler

pytestmark = pytest.mark.looptime


def quick(name: str, interval: float = 0.1) -> Job:
    base = make_job(name)
    return Job(base.target, interval=interval, timeout=0.05, source="test")


class Recorder:
    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.local_errors: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lateness: list[float] = []
        self.starts: list[float] = []

    async def probe(self, target, timeout: float) -> Result:
        self.starts.append(asyncio.get_running_loop().time())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if target.name.startswith("buggy"):
                raise RuntimeError("a bug")
            if target.name.startswith("starved"):
                raise LocalError(LocalReason.FILE_DESCRIPTORS, "Too many open files")
            return Result(target.name, target.protocol, True, None, "handshake", (), 0.01)
        finally:
            self.in_flight -= 1

    def scheduler(self, concurrency: int = 100) -> Scheduler:
        return Scheduler(
            {"wireguard": self.probe},
            lambda job, result: self.results.update([job.name]),
            lambda job, exc: self.errors.update([job.name]),
            on_local_error=lambda job, exc: self.local_errors.update([job.name]),
            on_start=self.lateness.append,
            concurrency=concurrency,
            jitter=0.1,
            rng=random.Random(7),
        )


async def run_for(scheduler: Scheduler, jobs: list[Job], seconds: float) -> None:
    task = asyncio.create_task(scheduler.run(jobs))
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_every_job_is_probed_about_once_per_interval():
    recorder = Recorder()
    jobs = [quick(f"t{i}") for i in range(50)]
    await run_for(recorder.scheduler(), jobs, 1.05)
    counts = [recorder.results[j.name] for j in jobs]
    assert min(counts) >= 7, counts  # ten intervals, less the random start offset
    assert max(counts) <= 12, counts


async def test_a_probe_that_raises_is_counted_and_keeps_its_schedule():
    recorder = Recorder()
    await run_for(recorder.scheduler(), [quick("buggy"), quick("fine")], 0.6)
    assert recorder.errors["buggy"] >= 3
    assert recorder.results["fine"] >= 3
    assert recorder.results["buggy"] == 0


async def test_concurrency_cap_holds():
    recorder = Recorder()
    await run_for(recorder.scheduler(concurrency=3), [quick(f"t{i}", 0.02) for i in range(30)], 0.3)
    assert recorder.max_in_flight == 3
    # Thirty targets due every 20 ms through three slots of 10 ms probes cannot all be on time.
    assert max(recorder.lateness) > 0.02
    assert min(recorder.lateness) >= 0


async def test_update_starts_new_stops_removed_and_keeps_unchanged_jobs():
    recorder = Recorder()
    scheduler = recorder.scheduler()
    kept, removed, added = quick("kept"), quick("removed"), quick("added")
    task = asyncio.create_task(scheduler.run([kept, removed]))
    await asyncio.sleep(0.35)
    kept_task = scheduler._tasks["kept"]
    scheduler.update([kept, added])
    removed_before = recorder.results["removed"]
    await asyncio.sleep(0.35)
    assert scheduler._tasks["kept"] is kept_task
    assert recorder.results["removed"] == removed_before
    assert recorder.results["added"] >= 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_cancellation_leaves_no_task_behind():
    recorder = Recorder()
    before = len(asyncio.all_tasks())
    await run_for(recorder.scheduler(), [quick(f"t{i}") for i in range(20)], 0.2)
    assert len(asyncio.all_tasks()) == before


async def test_a_local_error_is_the_hosts_and_makes_no_result():
    recorder = Recorder()
    await run_for(recorder.scheduler(), [quick("starved"), quick("fine")], 0.6)
    assert recorder.local_errors["starved"] >= 3
    assert recorder.results["starved"] == 0
    assert recorder.errors["starved"] == 0  # not a bug either
    assert recorder.results["fine"] >= 3


async def test_reloads_that_keep_the_cap_never_let_more_probes_run():
    recorder = Recorder()
    scheduler = recorder.scheduler(concurrency=4)
    jobs = [quick(f"t{i}", 0.02) for i in range(40)]
    task = asyncio.create_task(scheduler.run(jobs))
    for _ in range(3):
        await asyncio.sleep(0.105)
        scheduler.update(jobs, concurrency=4)
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert recorder.max_in_flight == 4


async def test_a_sink_that_raises_is_reported_and_the_target_keeps_its_schedule():
    errors: Counter[str] = Counter()
    seen: Counter[str] = Counter()

    def sink(job: Job, result: Result) -> None:
        seen[job.name] += 1
        raise ValueError("a broken sink")

    scheduler = Scheduler(
        {"wireguard": Recorder().probe},
        sink,
        lambda job, exc: errors.update([job.name]),
        on_local_error=lambda job, exc: None,
        concurrency=4,
        jitter=0.0,
    )
    await run_for(scheduler, [quick("t")], 0.55)
    assert seen["t"] >= 4
    assert errors["t"] == seen["t"]


async def test_limiter_shrinks_and_grows_while_held():
    limiter = Limiter(2)
    held = [asyncio.Event() for _ in range(4)]
    running = 0
    most = 0

    async def worker(release: asyncio.Event) -> None:
        nonlocal running, most
        async with limiter:
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(worker(event)) for event in held]
    await asyncio.sleep(0)
    assert running == 2
    limiter.resize(1)
    held[0].set()
    await asyncio.sleep(0)
    assert running == 1  # one released, none admitted: the new cap is 1
    limiter.resize(3)
    await asyncio.sleep(0)
    assert running == 3
    for event in held:
        event.set()
    await asyncio.gather(*tasks)
    assert most == 3
    assert limiter.in_use == 0


async def test_a_cancelled_waiter_gives_up_its_place():
    limiter = Limiter(1)
    async with limiter:
        waiter = asyncio.create_task(limiter.__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert limiter.in_use == 0
    async with limiter:
        assert limiter.in_use == 1


async def test_waiters_cancelled_together_never_break_the_limiter():
    """Cancelling waiters cancels their futures at once; a release before their tasks run must
    skip them (the monitor's stop cancels every waiting probe at the same time)."""
    limiter = Limiter(1)
    await limiter.__aenter__()
    waiters = [asyncio.create_task(limiter.__aenter__()) for _ in range(3)]
    await asyncio.sleep(0)
    for task in waiters[:2]:
        task.cancel()
    await limiter.__aexit__(None, None, None)  # must skip the two cancelled ones, wake the third
    await asyncio.gather(*waiters, return_exceptions=True)
    assert waiters[2].done() and not waiters[2].cancelled()
    assert limiter.in_use == 1


@pytest.mark.parametrize(
    ("targets", "interval", "grid"),
    [
        (400, 1.0, TICK_BATCH / 400),  # 400 probes a second: a tick of 16 of them
        (10, 1.0, 1.0 * MAX_TICK_SHARE),  # 10 a second: the interval's share caps it
        (4, 100.0, TICK),  # a few probes a minute: the longest tick
    ],
)
async def test_starts_are_rounded_to_a_tick_that_gathers_a_batch_at_the_probe_rate(
    targets: int, interval: float, grid: float
):
    recorder = Recorder()
    jobs = [quick(f"t{i}", interval) for i in range(targets)]
    await run_for(recorder.scheduler(), jobs, interval * 2)
    starts = recorder.starts
    assert len(starts) >= targets
    assert all(abs(start / grid - round(start / grid)) < 1e-6 for start in starts), grid
    per_tick = Counter(round(start / grid) for start in starts)
    assert sum(per_tick.values()) / len(per_tick) <= max(TICK_BATCH * 1.5, 1)
