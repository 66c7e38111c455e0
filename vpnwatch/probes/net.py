"""The two transports a machine can run over, and name resolution.

A link carries bytes for the driver and nothing more: a :class:`DatagramLink` is a connected UDP
socket, a :class:`StreamLink` a TCP connection. Both hand the OS's errors up unchanged;
the driver maps them in one place (:mod:`vpnwatch.probes.oserrors`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections import deque
from typing import Protocol

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
    host: str,
    port: int,
    kind: socket.SocketKind,
    family: socket.AddressFamily = socket.AF_UNSPEC,
) -> tuple[socket.AddressFamily, Address]:
    """The first address of ``host`` (of ``family``, if given): (family, (address, port));
    raises ``socket.gaierror``.

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
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=kind)
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


class DatagramLink:
    """A connected UDP socket of one probe's own, read straight from the event loop's selector.

    Its own socket, as real clients open one per connection: a peer that keeps state per source
    port (an OpenVPN server holds a session for its hand-window) sees a new port every time, and a
    peer that floods fills only this probe's buffer. Connected, so that the kernel reports ICMP
    errors for it: port unreachable arrives as ECONNREFUSED (``refused``); with IP_RECVERR, host
    and network unreachable too (``unreachable``), which Linux otherwise counts as soft errors.
    Without asyncio's datagram transport and protocol objects, which cost each probe about a
    fifth of its CPU, the socket is watched with ``add_reader`` directly.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._loop = loop
        self._sock = sock
        self._items: deque[bytes | OSError] = deque()
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    async def connect(cls, family: socket.AddressFamily, address: Address) -> DatagramLink:
        loop = asyncio.get_running_loop()
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if sys.platform == "linux" and family in _RECVERR:
                sock.setsockopt(*_RECVERR[family], 1)
            sock.connect(address)
            link = cls(loop, sock)
            loop.add_reader(sock.fileno(), link._readable)
        except BaseException:
            sock.close()
            raise
        return link

    async def send(self, chunks: list[bytes]) -> None:
        for datagram in chunks:
            self._sock.send(datagram)

    async def receive(self, delay: float | None) -> bytes | None:
        """The next datagram; an ICMP error reported meanwhile is raised as its OSError."""
        if not self._items:
            self._waiter = self._loop.create_future()
            try:
                async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        item = self._items.popleft()
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _readable(self) -> None:
        for _ in range(UDP_BACKLOG):  # then let the loop breathe; the rest comes next turn
            try:
                item: bytes | OSError = self._sock.recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error the kernel matched to this socket
                item = exc
            if len(self._items) < UDP_BACKLOG:  # a flood is dropped, not buffered without bound
                self._items.append(item)
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(None)


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
