"""What the scheduler runs: a target with its effective schedule.

A leaf module, so that the scheduler and the metrics know jobs without knowing how a configuration
is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpnwatch.quality import TunnelPlan
from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class Job:
    """A target with its effective schedule: what the scheduler runs.

    ``tunnel`` is its tunnel tests' plan, their own schedule included; None when the target says
    too little to test its tunnel, or its configuration turned them off.
    """

    target: TargetBase
    interval: float
    timeout: float
    source: str
    tunnel: TunnelPlan | None = None

    @property
    def name(self) -> str:
        return self.target.name
