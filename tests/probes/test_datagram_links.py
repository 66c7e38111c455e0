"""Datagram links: a socket of each probe's own, what its peer sends, errors to whom they concern.

Peers here are plain UDP sockets on loopback: what is tested is the kernel's behaviour under
vpnwatch's sockets, not any protocol.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from vpnwatch.probes.net import DatagramLink


def udp_peer() -> socket.socket:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    return peer


def closed_port() -> int:
    with udp_peer() as peer:
        return int(peer.getsockname()[1])


async def test_each_probe_gets_what_its_peer_sends_and_nothing_else():
    with udp_peer() as a, udp_peer() as b:
        link_a = await DatagramLink.connect(socket.AF_INET, a.getsockname())
        link_b = await DatagramLink.connect(socket.AF_INET, b.getsockname())
        await link_a.send([b"to a"])
        await link_b.send([b"to b"])
        data, source_a = a.recvfrom(100)
        assert data == b"to a"
        _, source_b = b.recvfrom(100)
        a.sendto(b"from a", source_a)
        b.sendto(b"from b", source_b)
        b.sendto(b"from b, to a's socket", source_a)  # a stranger writing to a's socket
        assert await link_a.receive(1.0) == b"from a"
        assert await link_b.receive(1.0) == b"from b"
        assert await link_a.receive(0.1) is None  # the stranger's datagram was dropped
        link_a.close()
        link_b.close()


async def test_port_unreachable_reaches_the_probe_it_concerns_only():
    with udp_peer() as alive:
        dead = await DatagramLink.connect(socket.AF_INET, ("127.0.0.1", closed_port()))
        live = await DatagramLink.connect(socket.AF_INET, alive.getsockname())
        await dead.send([b"anyone?"])
        await live.send([b"hello"])  # sent after the error was queued: still reaches its peer
        assert alive.recvfrom(100)[0] == b"hello"
        try:
            await dead.receive(1.0)
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("port unreachable was not reported")
        assert await live.receive(0.1) is None
        dead.close()
        live.close()


async def test_every_probe_gets_a_port_of_its_own():
    """As real clients do: a peer holding state per source port sees a new one each time."""
    with udp_peer() as peer:
        ports = set()
        for _ in range(3):
            link = await DatagramLink.connect(socket.AF_INET, peer.getsockname())
            await link.send([b"x"])
            ports.add(peer.recvfrom(100)[1][1])
            link.close()
        assert len(ports) == 3


async def test_a_wait_cut_off_from_outside_is_cancelled_and_the_link_still_works():
    """The probe's deadline cancels a receive: the cancellation must reach the probe (not be
    taken for the end of the receive's own delay), and the link must stay usable."""
    with udp_peer() as peer:
        link = await DatagramLink.connect(socket.AF_INET, peer.getsockname())
        waiting = asyncio.ensure_future(link.receive(30.0))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await link.send([b"x"])
        peer.sendto(b"later", peer.recvfrom(100)[1])
        assert await link.receive(1.0) == b"later"
        link.close()


async def test_a_datagram_after_a_receive_gave_up_waits_for_the_next_one():
    with udp_peer() as peer:
        link = await DatagramLink.connect(socket.AF_INET, peer.getsockname())
        assert await link.receive(0.01) is None
        await link.send([b"x"])
        peer.sendto(b"late reply", peer.recvfrom(100)[1])
        assert await link.receive(1.0) == b"late reply"
        assert await link.receive(0) is None
        link.close()
