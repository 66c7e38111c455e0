"""What every driver does at the edge: resolve, connect, and turn what went wrong into a Failure.

Drivers write their happy path inside :func:`guarded`; anything the network or the peer does to end
it early (a timeout, an OS error, a closed stream, a ProbeFailed of the driver's own) becomes a
Result failed at the stage the probe was attempting.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from vpnwatch.result import Failure, ProbeFailed, Result, Timeline, failure_from_oserror


async def guarded(timeline: Timeline, timeout: float, body: Callable[[], Awaitable[str]]) -> Result:
    """Run ``body`` within ``timeout``; its return value is the success detail."""
    try:
        async with asyncio.timeout(timeout):
            detail = await body()
    except TimeoutError:
        return timeline.failed(Failure.TIMEOUT, timeline.pending, f"no answer within {timeout:g} s")
    except ProbeFailed as exc:
        return timeline.failed(exc.failure, timeline.pending, exc.detail)
    except asyncio.IncompleteReadError:
        return timeline.failed(Failure.EOF, timeline.pending, "the peer closed the connection")
    except OSError as exc:
        return timeline.failed(failure_from_oserror(exc), timeline.pending, describe_oserror(exc))
    return timeline.success(detail)


def describe_oserror(exc: OSError) -> str:
    """A short human line for an OS error: no traceback, no repr."""
    if isinstance(exc, socket.gaierror):
        return f"name did not resolve: {exc.strerror}"
    return exc.strerror or exc.__class__.__name__


async def resolve(host: str, port: int, kind: socket.SocketKind) -> tuple[int, tuple[str, int]]:
    """The first address of ``host``: (family, sockaddr). Raises socket.gaierror (→ ``dns``)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=kind)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


async def connect_tcp(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Resolve and connect; resolution fails as ``dns``, a RST to our SYN as ``refused``."""
    _, (address, _) = await resolve(host, port, socket.SOCK_STREAM)
    return await asyncio.open_connection(address, port)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream without letting a peer that already vanished raise at us."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
