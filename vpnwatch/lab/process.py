"""What the lab's servers and real clients share: being taken down again, and their processes.

:class:`LabService` is the one context manager the lab's servers and clients are: ``start`` on
entry, ``close`` on exit — and ``close`` as well when ``start`` fails half-way, so that a server
that could not start leaves no process, route, firewall table or key file behind.
:func:`read_until` waits for the line a process prints once it is ready, :func:`close_pipes`
closes what is left of it, and :data:`ECHO_HANDLER` is the echo the lab's backends serve.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from vpnwatch.lab.netns import LabError

#: What entering the context gives: the service itself, or what it published (a bridge line's
#: parts, a port).
Entered = TypeVar("Entered")
_STARTUP_SECONDS = 10.0
#: An asyncio connection handler that sends back what it reads, as source text: the lab's
#: backends run as interpreters of their own (``python -c``), so that it needs no package beyond
#: Python, and the ones that echo share it.
ECHO_HANDLER = """
async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
"""


class LabService(ABC, Generic[Entered]):
    """A server or client the lab runs; use as a context manager."""

    @abstractmethod
    def start(self) -> Entered:
        """Start it; what the ``with`` statement binds."""

    @abstractmethod
    def close(self) -> None:
        """Take down whatever ``start`` set up, even half of it; safe to call twice."""

    def __enter__(self) -> Entered:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def close_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Close our ends of a stopped process's pipes (unclosed, each is a ResourceWarning)."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def read_until(
    proc: subprocess.Popen[bytes],
    done: Callable[[str], bool],
    what: str,
    *,
    failed: Callable[[str], bool],
    seconds: float = _STARTUP_SECONDS,
) -> str:
    """Read ``proc``'s stdout until ``done`` accepts a line, and return that line.

    Raises LabError when ``failed`` accepts a line, the process exits, or it takes too long.
    """
    assert proc.stdout is not None
    deadline = time.monotonic() + seconds
    pending = b""
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in (raw.decode(errors="replace").strip() for raw in lines):
            seen.append(line)
            if failed(line):
                raise LabError(f"{what}: {line}")
            if done(line):
                return line
    raise LabError(f"{what} did not get there within {seconds:.0f} s; it said: {seen[-20:]}")
