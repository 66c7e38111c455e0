"""Splitting a fleet of targets among N monitors: ``vpnwatch run --shard K/N``.

Rendezvous (highest-random-weight) hashing on the target name: each monitor keeps the targets for
which its own shard number scores highest. Shares are even, no two shards overlap, and when N
changes only about 1/N of the targets move — a consistent hash without a ring to tune.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based, as people count) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, sep, count = text.partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"shard {text!r} is not K/N, e.g. 1/3")
        shard = cls(int(index), int(count))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"shard {text!r}: K must be from 1 to N")
        return shard

    def owns(self, name: str) -> bool:
        return owner(name, self.count) == self.index

    def select(self, items: Iterable[T], name_of: Callable[[T], str]) -> list[T]:
        return [item for item in items if self.owns(name_of(item))]


def owner(name: str, count: int) -> int:
    """The shard (1..count) that owns ``name``."""
    return max(range(1, count + 1), key=lambda shard: _score(name, shard))


def _score(name: str, shard: int) -> bytes:
    return hashlib.blake2b(f"{shard}\0{name}".encode(), digest_size=8).digest()
