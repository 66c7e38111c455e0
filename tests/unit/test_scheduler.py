"""The scheduler against plain probe functions: it knows nothing of protocols, so none are needed."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.unit.test_metrics import job as make_job
from vpnwatch.config import Job
from vpnwatch.result import Result
from vpnwatch.scheduler import Scheduler


def quick(name: str, interval: float = 0.1) -> Job:
    base = make_job(name)
    return Job(base.target, interval=interval, timeout=0.05, source="test")


class Recorder:
    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lateness: list[float] = []

    async def probe(self, target, timeout: float) -> Result:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if target.name.startswith("buggy"):
                raise RuntimeError("a bug")
            return Result(target.name, target.protocol, True, None, "handshake", (), 0.01)
        finally:
            self.in_flight -= 1

    def scheduler(self, concurrency: int = 100) -> Scheduler:
        return Scheduler(
            {"wireguard": self.probe},
            lambda job, result: self.results.update([job.name]),
            lambda job, exc: self.errors.update([job.name]),
            on_start=self.lateness.append,
            concurrency=concurrency,
            jitter=0.1,
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
