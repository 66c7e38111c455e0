"""The two transports a machine can run over, and name resolution.

A link carries bytes for the driver and nothing more: a :class:`DatagramLink` is a leased UDP
socket, a :class:`StreamLink` a TCP connection. Both hand the OS's errors up unchanged;
the driver maps them in one place (:mod:`vpnwatch.probes.oserrors`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import sys
import weakref
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


class DatagramLink:
    """One probe's datagrams to and from one address, and the ICMP errors about it.

    A probe leases a UDP socket from its event loop's pool (:class:`DatagramSocket`) and hands it
    back when done: a socket of its own per probe (created, connected, registered with the loop,
    closed) cost a verified WireGuard probe a fifth of its CPU. A socket serves one probe at a
    time, so a peer that floods fills only the buffer of the probe that asked it, as before; what
    comes from another address is dropped, and ICMP errors reach the probe of the address they
    are about: port unreachable as ECONNREFUSED (``refused``), host or network unreachable as
    EHOSTUNREACH/ENETUNREACH (``unreachable``).
    """

    def __init__(self, sock: DatagramSocket, address: Address) -> None:
        self._sock = sock
        self.address = address
        self._items: deque[bytes | OSError] = deque()
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    async def connect(cls, family: socket.AddressFamily, address: Address) -> DatagramLink:
        sock = DatagramSocket.lease(asyncio.get_running_loop(), family, address)
        link = cls(sock, address)
        sock.link = link
        return link

    def deliver(self, item: bytes | OSError) -> None:
        """From the socket: a datagram or an error; a flood beyond the backlog is dropped."""
        if len(self._items) < UDP_BACKLOG:
            self._items.append(item)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    async def send(self, chunks: list[bytes]) -> None:
        for datagram in chunks:
            self._sock.send(datagram, self.address)

    async def receive(self, delay: float | None) -> bytes | None:
        """The next datagram; an ICMP error reported meanwhile is raised as its OSError."""
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
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
        self._sock.release(self)


#: Idle sockets a loop keeps per family for the next probes; more are closed.
POOL_SIZE = 256
#: A socket is not leased again for a peer it talked to this recently: the peer may still hold
#: state for that source port (an OpenVPN server keeps a half-open session for its 60 s
#: hand-window and drops a new client's reset from the same port meanwhile). Real clients open a
#: fresh port for every connection; to a peer, a probe must look the same.
QUARANTINE = 120.0
#: A socket that received this many datagrams from addresses it was not talking to during one
#: lease is closed, not reused: a peer that goes on sending must not reach the next probe.
MAX_STRAYS = 16
#: Each event loop's idle sockets by family: a socket belongs to the loop that watches it.
_POOLS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[socket.AddressFamily, list[DatagramSocket]]
] = weakref.WeakKeyDictionary()


def pooled_sockets() -> int:
    """Idle sockets kept for the next probes, on every loop: open files that are no leak."""
    return sum(len(idle) for pools in _POOLS.values() for idle in pools.values())


#: struct sock_extended_err: errno, origin, type, code, pad, info, data.
_EXTENDED_ERROR = struct.Struct("=IBBBBII")


class DatagramSocket:
    """An unconnected UDP socket, leased to one probe at a time and then kept for the next.

    Unconnected, so one socket can serve any address; IP_RECVERR makes Linux queue the ICMP
    errors such a socket would otherwise drop, each naming the destination it is about.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, family: socket.AddressFamily) -> None:
        self._loop = loop
        self._family = family
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            if sys.platform == "linux" and family in _RECVERR:
                self._sock.setsockopt(*_RECVERR[family], 1)
            loop.add_reader(self._sock.fileno(), self._readable)
        except BaseException:
            self._sock.close()
            raise
        self._finalizer = weakref.finalize(loop, self._sock.close)
        self.link: DatagramLink | None = None
        self._strays = 0
        self._last_used: dict[Address, float] = {}  # peer -> when its probe ended

    @classmethod
    def lease(
        cls, loop: asyncio.AbstractEventLoop, family: socket.AddressFamily, address: Address
    ) -> DatagramSocket:
        """An idle socket of ``family`` that has not talked to ``address`` lately, or a new one."""
        idle = _POOLS.setdefault(loop, {}).setdefault(family, [])
        since = loop.time() - QUARANTINE
        for index in range(len(idle) - 1, -1, -1):
            if idle[index]._last_used.get(address, since) <= since:
                return idle.pop(index)
        return cls(loop, family)

    def release(self, link: DatagramLink) -> None:
        """``link``'s probe is done: keep the socket for the next, unless a peer keeps sending."""
        if self.link is not link:
            return
        self.link = None
        now = self._loop.time()
        self._last_used = {a: t for a, t in self._last_used.items() if t > now - QUARANTINE}
        self._last_used[link.address] = now
        idle = _POOLS.setdefault(self._loop, {}).setdefault(self._family, [])
        if self._strays < MAX_STRAYS and len(idle) < POOL_SIZE and not self._loop.is_closed():
            self._strays = 0
            idle.append(self)
        else:
            self._close()

    def send(self, datagram: bytes, address: Address) -> None:
        """Send; an error the kernel held for an earlier datagram goes to whom it concerns.

        A queued ICMP error also sets the socket's pending error, which the next call on the
        socket raises, whichever address it is for. So a failed send first reads the error queue:
        if that held anything, the error was about an earlier peer, and the send is tried again.
        """
        try:
            self._sock.sendto(datagram, address)
        except OSError:
            if not self._read_error_queue():
                raise  # about this very send: no route, a local firewall, full buffers
            self._sock.sendto(datagram, address)

    def _close(self) -> None:
        if not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._finalizer()

    def _readable(self) -> None:
        for _ in range(UDP_BACKLOG):  # then let the loop breathe; the rest comes next turn
            try:
                data, source = self._sock.recvfrom(_READ_SIZE)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error is queued: read which destination it is about
                self._read_error_queue()
                continue
            self._dispatch((str(source[0]), int(source[1])), data)

    def _read_error_queue(self) -> int:
        """Hand every queued ICMP error to the probe of its destination; how many there were."""
        count = 0
        while True:
            try:
                _, ancillary, _, destination = self._sock.recvmsg(
                    _READ_SIZE, 1024, socket.MSG_ERRQUEUE
                )
            except OSError:  # queue empty (EAGAIN), or no error queue here
                return count
            count += 1
            for _, _, data in ancillary:
                if len(data) >= _EXTENDED_ERROR.size:
                    code = _EXTENDED_ERROR.unpack_from(data)[0]
                    error = OSError(code, os.strerror(code))
                    self._dispatch((str(destination[0]), int(destination[1])), error)

    def _dispatch(self, address: Address, item: bytes | OSError) -> None:
        if self.link is not None and self.link.address == address:
            self.link.deliver(item)
        elif isinstance(item, bytes):
            self._strays += 1  # a late reply to an earlier probe, or someone else's traffic


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
