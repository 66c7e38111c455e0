"""What the scheduler runs: a target with its effective schedule.

A leaf module, so that the scheduler and the metrics know jobs without knowing how a configuration
is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class Job:
    """A target with its effective schedule: what the scheduler runs."""

    target: TargetBase
    interval: float
    timeout: float
    source: str

    @property
    def name(self) -> str:
        return self.target.name
