"""What every fuzz property here shares: profiles, seeded mutations, a hang guard, input counts.

Profiles: ``fast`` (the default test run: deterministic, a few hundred examples per property) and
``long`` (``scripts/fuzz.sh``: random, ~70,000 examples per property, over a million inputs in
all). ``VPNWATCH_FUZZ_PROFILE`` picks one, and ``VPNWATCH_FUZZ_EXAMPLES`` overrides its number of
examples per property. They are named profiles of their own, applied with
:data:`FUZZ`, so loading one never changes the settings of any other test in the run.

Inputs are mutations of valid messages (:func:`mutated`): a parser fed only random bytes stops
at its first length check, while a valid message bit-flipped, truncated, extended or spliced
reaches every branch behind it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE_ENV = "VPNWATCH_FUZZ_PROFILE"
EXAMPLES_ENV = "VPNWATCH_FUZZ_EXAMPLES"
STATS_ENV = "VPNWATCH_FUZZ_STATS"
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "vpnwatch-fuzz-fast",
    max_examples=300,
    derandomize=True,  # the default run must not fail one day and pass the next
    deadline=2000,
    suppress_health_check=_SUPPRESS,
    print_blob=True,
)
settings.register_profile(
    "vpnwatch-fuzz-long",
    max_examples=70_000,
    deadline=2000,
    suppress_health_check=_SUPPRESS,
    print_blob=True,
    database=None,  # every long run explores afresh
)
PROFILE = os.environ.get(PROFILE_ENV, "fast")
FUZZ = settings(settings.get_profile(f"vpnwatch-fuzz-{PROFILE}"))
if os.environ.get(EXAMPLES_ENV):
    FUZZ = settings(FUZZ, max_examples=int(os.environ[EXAMPLES_ENV]))
#: For properties whose every example is expensive (real crypto, a file on disk per input).
FUZZ_SLOW = settings(FUZZ, max_examples=max(FUZZ.max_examples // 3, 50))

#: Wall-clock seconds one input may take before it counts as a hang.
HANG_SECONDS = 5.0

#: Inputs fed to each parser in this process, reported by ``scripts/fuzz.sh``.
INPUTS: Counter[str] = Counter()


class Hang(Exception):
    """A parser ran past :data:`HANG_SECONDS` on one input."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Interrupt the block with :class:`Hang` if it runs too long (main thread only).

    Hypothesis's ``deadline`` reports a slow example only after it returns; an endless loop
    never returns, so this timer is what turns one into a failing, shrinkable example.
    """

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def count(parser: str, inputs: int = 1) -> None:
    INPUTS[parser] += inputs


def write_stats() -> None:
    """Add this run's counts to the JSON file ``VPNWATCH_FUZZ_STATS`` names, if it names one."""
    target = os.environ.get(STATS_ENV)
    if not target:
        return
    path = Path(target)
    totals: Counter[str] = Counter(json.loads(path.read_text()) if path.exists() else {})
    totals.update(INPUTS)
    path.write_text(json.dumps(dict(sorted(totals.items())), indent=1) + "\n")


# -- mutations ------------------------------------------------------------------------------------


@st.composite
def _mutate(draw: st.DrawFn, seed: bytes, others: Sequence[bytes], max_size: int) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(
            st.sampled_from(["flip", "byte", "truncate", "insert", "extend", "splice", "repeat"])
        )
        position = draw(st.integers(0, len(data)))
        if operation == "flip" and data:
            index = min(position, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif operation == "byte" and data:
            data[min(position, len(data) - 1)] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "extend":
            data += draw(st.binary(max_size=64)) * draw(st.integers(1, max_size // 64 + 1))
        elif operation == "splice" and others:
            other = draw(st.sampled_from(others))
            data[position:] = other[draw(st.integers(0, len(other))) :]
        elif operation == "repeat" and data:
            data = data * draw(st.integers(2, max(2, max_size // max(len(data), 1))))
    return bytes(data[:max_size])


def mutated(seeds: Sequence[bytes], *, max_size: int = 65_535) -> st.SearchStrategy[bytes]:
    """Valid ``seeds`` as they are, damaged by a few mutations, or random bytes, up to max_size.

    Mutations: bit flips, boundary bytes, truncation, insertion, extension (oversized inputs),
    splicing with another seed, and repetition.
    """
    return st.one_of(
        st.sampled_from(seeds),
        st.sampled_from(seeds).flatmap(lambda seed: _mutate(seed, seeds, max_size)),
        st.binary(max_size=min(max_size, 2048)),
    )


def chunked(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into pieces at arbitrary places, as a TCP stream may deliver it."""
    return st.lists(st.integers(1, max(len(data) - 1, 1)), max_size=8).map(
        lambda cuts: _split(data, sorted(set(cuts)))
    )


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds) if end > start] or [b""]
