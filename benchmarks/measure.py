"""How the benchmarks measure: CPU from the kernel's accounting, wall time, percentiles, memory.

CPU is what ``getrusage`` reports, user and system time together: system time is real cost of a
probe (its socket calls), and on the lab's veth link it also carries the namespace's receive path,
which runs in the sender's system call. A thread the process starts is counted too, which is the
point: a probe that hands work to a thread pool must not look cheaper for it.
"""

from __future__ import annotations

import gc
import math
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Usage:
    """CPU seconds (user, system) and wall seconds spent inside a :func:`measured` block."""

    user: float = 0.0
    system: float = 0.0
    wall: float = 0.0

    @property
    def cpu(self) -> float:
        return self.user + self.system


@dataclass
class _Reading:
    rusage: resource.struct_rusage
    wall: float = field(default_factory=time.monotonic)


@contextmanager
def measured(who: int = resource.RUSAGE_SELF) -> Iterator[Usage]:
    """CPU and wall time of the block; ``who=RUSAGE_CHILDREN`` counts children waited for in it."""
    usage = Usage()
    before = _Reading(resource.getrusage(who))
    try:
        yield usage
    finally:
        after = _Reading(resource.getrusage(who))
        usage.user = after.rusage.ru_utime - before.rusage.ru_utime
        usage.system = after.rusage.ru_stime - before.rusage.ru_stime
        usage.wall = after.wall - before.wall


def process_cpu(pid: int) -> float:
    """CPU seconds a running process has used so far, summed over its threads.

    From each thread's ``schedstat`` (nanoseconds on a CPU), which is exact; the tick-sampled
    times in ``stat`` are too coarse for a check that costs a millisecond or two.
    """
    threads = Path(f"/proc/{pid}/task").iterdir()
    return sum(int((thread / "schedstat").read_text().split()[0]) for thread in threads) / 1e9


def memory_kib(field_name: str, pid: int | str = "self") -> int:
    """A ``/proc/PID/status`` memory line in KiB: VmRSS now, or VmHWM, the peak."""
    status = Path(f"/proc/{pid}/status")
    for line in status.read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise LookupError(f"{field_name} is not in {status}")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with ``fraction`` of all at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class GcPauses:
    """Pauses of Python's cyclic garbage collector, in seconds, while :func:`gc_pauses` runs."""

    pauses: list[float] = field(default_factory=list)
    _began: float = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._began)


@contextmanager
def gc_pauses() -> Iterator[GcPauses]:
    """Record every collection inside the block: a long one stalls every probe at once."""
    recorded = GcPauses()
    gc.callbacks.append(recorded._callback)
    try:
        yield recorded
    finally:
        gc.callbacks.remove(recorded._callback)
