"""``vpnwatch check``: probe every target once, at most ``concurrency`` at a time, and print each
result as it arrives, as a table or JSON lines.

Exit status: 0 all ok, 1 some probe failed, 3 nothing failed but some probe could not be carried
out on this host (a local error), so the answer is incomplete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from vpnwatch.config import Config
from vpnwatch.exitcodes import EXIT_FAILED, EXIT_LOCAL, EXIT_OK
from vpnwatch.limits import probe_capacity
from vpnwatch.printable import printable
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.records import error_record, result_record
from vpnwatch.result import LocalError, LocalReason, Result
from vpnwatch.targets.base import TargetBase


def check_all(config: Config, *, as_json: bool) -> int:
    """Probe every target of ``config`` once, print each result as it ends; the exit status."""
    targets = [(job.target, job.timeout) for job in config.jobs]
    for skipped in config.skipped:
        print(printable(f"vpnwatch: skipped {skipped.describe()}"), file=sys.stderr)
    output: _Output = JsonOutput() if as_json else TableOutput(targets)
    concurrency = probe_capacity(config.settings.concurrency)
    tally = asyncio.run(_probe_all(targets, concurrency, output))
    print(
        f"vpnwatch: {len(targets)} targets: {tally['ok']} ok, {tally['failed']} failed"
        + (f", {tally['error']} could not be probed here" if tally["error"] else "")
        + (f"; {len(config.skipped)} entries skipped" if config.skipped else ""),
        file=sys.stderr,
    )
    if tally["failed"]:
        return EXIT_FAILED
    return EXIT_LOCAL if tally["error"] else EXIT_OK


Outcome = Result | LocalError


async def _probe_all(
    targets: Sequence[tuple[TargetBase, float]], concurrency: int, output: _Output
) -> Counter[str]:
    """Probe every target, at most ``concurrency`` at once, printing each as it ends."""
    limit = asyncio.Semaphore(concurrency)
    tally: Counter[str] = Counter({"ok": 0, "failed": 0, "error": 0})

    async def probe(target: TargetBase, timeout: float) -> None:
        async with limit:
            try:
                outcome: Outcome = await run_probe(PROBES[target.protocol], target, timeout)
            except LocalError as exc:
                outcome = exc
            except Exception as exc:  # a bug in vpnwatch: say so, keep probing the others
                logging.getLogger("vpnwatch").error(
                    "probe of %s raised (a bug in vpnwatch)", target.name, exc_info=exc
                )
                outcome = LocalError(LocalReason.INTERNAL, "the probe raised (a bug in vpnwatch)")
        tally["error" if isinstance(outcome, LocalError) else "ok" if outcome.ok else "failed"] += 1
        output.show(target, outcome)

    async with asyncio.TaskGroup() as group:
        for target, timeout in targets:
            group.create_task(probe(target, timeout))
    return tally


class _Output(Protocol):
    def show(self, target: TargetBase, outcome: Outcome) -> None: ...


class JsonOutput:
    """One JSON object per line, as each probe ends."""

    def show(self, target: TargetBase, outcome: Outcome) -> None:
        record = (
            error_record(target, outcome)
            if isinstance(outcome, LocalError)
            else result_record(target, outcome)
        )
        print(json.dumps(record), flush=True)


class TableOutput:
    """A table whose rows appear as probes end; columns sized from the targets up front.

    Names, endpoints and details come from configs and peers: every cell and detail is shown
    through :func:`printable`, and the widths are those of the escaped text.
    """

    _HEADER = ("TARGET", "PROTOCOL", "ENDPOINT", "RESULT", "FAILURE", "STAGE", "TIME")
    #: Widest values of the columns that depend on the outcome, not the target.
    _OUTCOME_WIDTHS = (6, 16, 9, 10)

    def __init__(self, targets: Sequence[tuple[TargetBase, float]]) -> None:
        self._widths = [
            max([len(header), *(len(printable(value)) for value in values)])
            for header, values in zip(
                self._HEADER,
                (
                    [t.name for t, _ in targets],
                    [t.protocol for t, _ in targets],
                    [t.endpoint for t, _ in targets],
                ),
                strict=False,
            )
        ]
        self._widths += [
            max(len(header), width)
            for header, width in zip(self._HEADER[3:], self._OUTCOME_WIDTHS, strict=False)
        ]
        self._print(self._HEADER)

    def show(self, target: TargetBase, outcome: Outcome) -> None:
        if isinstance(outcome, LocalError):
            row = (target.name, target.protocol, target.endpoint, "ERROR", str(outcome.reason))
            self._print((*row, "-", "-"))
            print(
                printable(f"  {target.name}: could not be probed here: {outcome.detail}"),
                flush=True,
            )
            return
        failure = str(outcome.failure or "-")
        result = "ok" if outcome.ok else "FAILED"
        stage, took = outcome.stage or "-", f"{outcome.duration * 1000:.1f} ms"
        self._print((target.name, target.protocol, target.endpoint, result, failure, stage, took))
        if outcome.detail and not outcome.ok:
            print(printable(f"  {target.name}: {outcome.detail}"), flush=True)

    def _print(self, row: Sequence[str]) -> None:
        cells = (
            printable(cell).ljust(width) for cell, width in zip(row, self._widths, strict=False)
        )
        print("  ".join(cells).rstrip(), flush=True)
