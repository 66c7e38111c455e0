"""Report how many inputs the fuzz properties fed each parser (``scripts/fuzz.sh`` reads it)."""

from __future__ import annotations

import pytest

from tests.hardening.fuzzing import INPUTS, PROFILE, write_stats


def pytest_sessionfinish(session: pytest.Session) -> None:
    write_stats()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if INPUTS:
        total = sum(INPUTS.values())
        terminalreporter.write_line(
            f"fuzz profile {PROFILE}: {total:,} inputs to {len(INPUTS)} parsers"
        )
