"""The two transports a machine can run over, and name resolution.

A link carries bytes for the driver and nothing more: a :class:`DatagramLink` is a connected UDP
socket, a :class:`StreamLink` a TCP connection. Both hand the OS's errors up unchanged; the driver
maps them in one place (:mod:`vpnwatch.probes.oserrors`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from typing import Protocol, cast

#: Linux's IP_RECVERR and IPV6_RECVERR (named in the socket module only from Python 3.12).
_RECVERR = {
    socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
    socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25)),
}
#: Datagrams and errors held for a probe that has not read them yet; a flood beyond is dropped.
UDP_BACKLOG = 256
_READ_SIZE = 65536

Address = tuple[str, int]


async def resolve(
    host: str, port: int, kind: socket.SocketKind
) -> tuple[socket.AddressFamily, Address]:
    """The first address of ``host``: (family, (address, port)); raises ``socket.gaierror``.

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
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "resolves to no address")
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


class Link(Protocol):
    """One transport to the peer, as the driver uses it."""

    async def send(self, chunks: list[bytes]) -> None:
        """Send datagrams (or stream chunks, in order)."""

    async def receive(self, delay: float | None) -> bytes | None:
        """What arrives within ``delay`` seconds (None: the delay passed); ``b""`` is EOF."""
        ...

    def close(self) -> None: ...


class DatagramLink(asyncio.DatagramProtocol):
    """A connected UDP socket as an async queue of datagrams and ICMP errors.

    Connected, so that the kernel reports ICMP errors for it: port unreachable arrives as
    ECONNREFUSED (``refused``); with IP_RECVERR, host and network unreachable too
    (``unreachable``), which Linux otherwise counts as soft errors and keeps from UDP sockets.
    """

    def __init__(self) -> None:
        self._datagrams: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=UDP_BACKLOG)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def connect(cls, family: socket.AddressFamily, address: Address) -> DatagramLink:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if sys.platform == "linux" and family in _RECVERR:
                sock.setsockopt(*_RECVERR[family], 1)
            sock.connect(address)
            loop = asyncio.get_running_loop()
            _, link = await loop.create_datagram_endpoint(cls, sock=sock)
        except BaseException:
            sock.close()
            raise
        return link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self._datagrams.full():  # a flood is dropped, not buffered without bound
            self._datagrams.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError) and not self._datagrams.full():
            self._datagrams.put_nowait(exc)

    async def send(self, chunks: list[bytes]) -> None:
        assert self._transport is not None
        for datagram in chunks:
            self._transport.sendto(datagram)

    async def receive(self, delay: float | None) -> bytes | None:
        """The next datagram; an ICMP error reported meanwhile is raised as its OSError."""
        try:
            async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can swallow a cancel
                item = await self._datagrams.get()
        except TimeoutError:
            return None
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class StreamLink:
    """A TCP connection; a RST to our SYN is ECONNREFUSED, one later ECONNRESET."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, family: socket.AddressFamily, address: Address) -> StreamLink:
        reader, writer = await asyncio.open_connection(*address, family=family)
        return cls(reader, writer)

    async def send(self, chunks: list[bytes]) -> None:
        self._writer.writelines(chunks)
        await self._writer.drain()

    async def receive(self, delay: float | None) -> bytes | None:
        try:
            async with asyncio.timeout(delay):
                return await self._reader.read(_READ_SIZE)
        except TimeoutError:
            return None

    def close(self) -> None:
        """Close politely (what was written is still flushed) without waiting for the peer."""
        self._writer.close()
