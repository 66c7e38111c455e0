"""What every driver does at the edge: resolve, connect, and turn what went wrong into a Failure.

Drivers write their happy path inside :func:`guarded`; anything the network or the peer does to end
it early (a timeout, an OS error, a closed stream, a ProbeFailed of the driver's own) becomes a
Result failed at the stage the probe was attempting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import cast

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


async def resolve(
    host: str, port: int, kind: socket.SocketKind
) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """The first address of ``host``: (family, (address, port)); fails as ``dns``.

    An address literal is taken as it is: the event loop's ``getaddrinfo`` would hand it to a
    worker thread and back, which costs a probe of an IP endpoint a tenth of its CPU.
    """
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return family, (str(literal), port)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=kind)
    if not infos:
        raise ProbeFailed(Failure.DNS, f"{host} resolves to no address")
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


#: Linux's IP_RECVERR and IPV6_RECVERR (named in the socket module only from Python 3.12).
_RECVERR = {
    socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
    socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25)),
}
#: Datagrams and errors held for a probe that has not read them yet; a flood beyond is dropped.
UDP_BACKLOG = 256


class UdpChannel(asyncio.DatagramProtocol):
    """A connected UDP socket as an async queue of datagrams and ICMP errors.

    Connected, so that the kernel reports ICMP errors for it: port unreachable arrives as
    ECONNREFUSED (``refused``); with IP_RECVERR, host and network unreachable too
    (``unreachable``), which Linux otherwise counts as soft errors and keeps from UDP sockets.
    """

    def __init__(self) -> None:
        self._datagrams: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=UDP_BACKLOG)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> UdpChannel:
        """Resolve ``host`` and connect to it."""
        return await cls.connect(*await resolve(host, port, socket.SOCK_DGRAM))

    @classmethod
    async def connect(cls, family: socket.AddressFamily, address: tuple[str, int]) -> UdpChannel:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if sys.platform == "linux" and family in _RECVERR:
                sock.setsockopt(*_RECVERR[family], 1)
            sock.connect(address)
            loop = asyncio.get_running_loop()
            _, channel = await loop.create_datagram_endpoint(cls, sock=sock)
        except BaseException:
            sock.close()
            raise
        return channel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self._datagrams.full():  # a flood is dropped, not buffered without bound
            self._datagrams.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError) and not self._datagrams.full():
            self._datagrams.put_nowait(exc)

    def send(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.sendto(data)

    async def receive(self) -> bytes:
        """The next datagram; an ICMP error reported meanwhile is raised as its OSError."""
        item = await self._datagrams.get()
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
