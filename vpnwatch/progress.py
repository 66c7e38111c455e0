"""Progress for long commands on a terminal, and nothing at all when output is piped.

A 30-day report of 60 targets takes tens of seconds; on a terminal the user sees which step
runs and how many are done (rich's progress bar, on stderr, erased when done). Piped or in a
timer unit, stderr is not a terminal and nothing is drawn: logs and scripts get only the
one-line summary each command prints when it is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Called with what is being done next ("reading vpnwatch_probes_total"); advances one step.
Step = Callable[[str], None]


def _ignore(_what: str) -> None:
    """The step of a run without a terminal: nothing to draw."""


@contextlib.contextmanager
def progress(title: str, total: int) -> Iterator[Step]:
    """A step counter shown as ``title: what  ━━━━━  3/8  0:00:04`` while the block runs."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield _ignore
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(title, total=total)
        started = False

        def step(what: str) -> None:
            nonlocal started
            bar.update(task, advance=1 if started else 0, description=f"{title}: {what}")
            bar.refresh()
            started = True

        yield step
        bar.update(task, completed=total)
