"""What every interop module shares: running ``vpnwatch check`` as a user would, verdicts to
compare with the real client's, and running a module's cases at the same time.

Each module builds one lab (real servers in a namespace) and a list of cases; a module-scoped
fixture runs every case concurrently once, with :func:`run_cases`, and one test per case then
asserts that the real client and vpnwatch agree on the same file against the same server, and
that vpnwatch's failure class is the one the README gives for what happened.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

#: The command users run, from the environment running the tests.
VPNWATCH = str(Path(sys.executable).with_name("vpnwatch"))
#: The verdict on a file the client refuses before it sends anything: vpnwatch exits 2.
FILE_REFUSED = "file refused"


C = TypeVar("C")
R = TypeVar("R")


@dataclass(frozen=True)
class Verdict:
    """What one client said about one endpoint of a file.

    ``failure`` is vpnwatch's failure class, or, for a real client, the class its own report
    implies when it says enough to tell (a SOCKS reply "connection refused", a name ``wg``
    could not resolve); None when it only says "did not connect".
    """

    ok: bool
    failure: str | None = None
    detail: str = ""


#: A file's verdicts by endpoint as the file writes it (``host:port``, ``[v6]:port``); the key
#: ``""`` holds the verdict on the whole file when it was refused.
Verdicts = Mapping[str, Verdict]


async def run(argv: Sequence[str], *, input_: str | None = None) -> tuple[int, str, str]:
    """Run a command to its end without blocking the other cases: (status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input_ is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(input_.encode() if input_ is not None else None)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def vpnwatch_check(
    where: Callable[[Sequence[str]], list[str]], paths: Sequence[Path], timeout: float
) -> dict[Path, Verdicts]:
    """``vpnwatch check --json FILE...`` run as a user runs it (``where`` wraps the command to
    run in the vantage's namespace): each file's verdicts by endpoint.

    One run for many files, as users run it, and as cheap for the shared CPU as one; a target
    belongs to the file whose stem its name starts with, so the stems must differ.
    """
    stems = {path.stem: path for path in paths}
    assert len(stems) == len(paths), "files checked together need different stems"
    status, out, err = await run(
        where([VPNWATCH, "check", "--json", "--timeout", f"{timeout:g}", *map(str, paths)])
    )
    if status == 2:
        return {path: {"": Verdict(False, FILE_REFUSED, err.strip())} for path in paths}
    assert status in (0, 1), f"vpnwatch check exited {status}: {err}"
    verdicts: dict[Path, dict[str, Verdict]] = {path: {} for path in paths}
    for line in out.splitlines():
        record = json.loads(line)
        path = stems[record["target"].partition("/")[0]]
        verdicts[path][record["endpoint"]] = Verdict(
            record["ok"], record["failure"], record["detail"]
        )
    return dict(verdicts)


async def vpnwatch_check_files(
    where: Callable[[Sequence[str]], list[str]],
    files: Mapping[Path, bool],
    timeout: float,
) -> dict[Path, Verdicts]:
    """:func:`vpnwatch_check` of every file, expected to be accepted (True) or refused (False):
    the accepted ones in one run, each refused one in a run of its own, as it stops a run."""
    accepted = [path for path, ok in files.items() if ok]
    refused = [[path] for path, ok in files.items() if not ok]
    runs = await asyncio.gather(
        *(vpnwatch_check(where, group, timeout) for group in [accepted, *refused] if group)
    )
    return {path: verdicts for found in runs for path, verdicts in found.items()}


async def vpnwatch_skipped(
    where: Callable[[Sequence[str]], list[str]], paths: Sequence[Path]
) -> dict[Path, list[str]]:
    """What ``vpnwatch config check --json FILE...`` lists as skipped in each file: the kinds."""
    status, out, err = await run(where([VPNWATCH, "config", "check", "--json", *map(str, paths)]))
    assert status == 0, err
    skipped: dict[Path, list[str]] = {path: [] for path in paths}
    for entry in json.loads(out)["skipped"]:
        skipped[Path(entry["source"])].append(entry["entry"])
    return skipped


def run_cases(cases: Iterable[C], one: Callable[[C], Awaitable[R]]) -> list[R]:
    """Run ``one`` for every case at the same time; the results in the cases' order."""

    async def every() -> list[R]:
        return list(await asyncio.gather(*(one(case) for case in cases)))

    return asyncio.run(every())


def assert_agree(real: Verdicts, checked: Verdicts, expected: Mapping[str, str | None]) -> None:
    """The real client and vpnwatch agree on every endpoint, and vpnwatch's failure class is the
    expected one (None: ok) — and the real client's, whenever that one says which it is."""
    assert set(real) == set(checked) == set(expected), (real, checked)
    for endpoint, failure in expected.items():
        mine, theirs = checked[endpoint], real[endpoint]
        context = f"{endpoint}: real client {theirs}, vpnwatch {mine}"
        assert (theirs.ok, mine.ok) == (failure is None, failure is None), context
        assert mine.failure == failure, context
        if theirs.failure is not None:
            assert theirs.failure == mine.failure, context
