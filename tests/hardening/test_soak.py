"""A one-minute soak in every test run; ``scripts/soak.sh`` runs the long ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening.soak import SoakPlan, run_soak

pytestmark = [pytest.mark.lab, pytest.mark.slow]


async def test_nothing_grows_and_every_target_is_probed_in_every_phase(tmp_path: Path) -> None:
    plan = SoakPlan(seconds=30, phase_seconds=4, interval=0.5, timeout=0.4)
    report = await run_soak(plan, tmp_path, progress=lambda line: None)
    phases = [sample.phase for sample in report.samples]
    assert {"wireguard-stopped", "censor-drop", "censor-reset"} <= set(phases)
    assert phases[-1] == "healthy"
    assert report.problems() == [], report.summary()
    assert min(sample.least_probed_in_phase for sample in report.samples) >= 2
