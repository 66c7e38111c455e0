"""Streaming parsers keep a bounded amount of what a peer sends, however much it sends.

Each parser is fed megabytes of hostile input in 64 KiB reads (or thousands of datagrams), its
output dropped as a driver drops it; what it holds after the last read (tracemalloc's count of
live allocations) may exceed what it held after the first few by less than one read.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from tests.hardening.seeds import OBFS4_KEYS, WireGuardPeers, obfs4_capture, openvpn_wire
from vpnwatch.lab.openvpn import generate_pki
from vpnwatch.protocols.obfs4 import NEED_DATA, Obfs4Error, Obfs4Session
from vpnwatch.protocols.obfs4.framing import FrameEncoder
from vpnwatch.protocols.openvpn.client import ClientConfig, OpenVPNClient
from vpnwatch.protocols.openvpn.packets import TcpDeframer, frame_tcp
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.openvpn.wrappers import NoWrap
from vpnwatch.protocols.wireguard import NoiseHandshake, WireGuardInitiator, tai64n

READ = 65_536
READS = 32  # 2 MiB per parser
WARM_UP = 4


def _growth(feed: Callable[[], Iterator[None]]) -> int:
    """How much more is held after the last read than after the first few.

    ``feed`` yields after each read, keeping its parser alive, so what it holds is live memory.
    """
    reads = feed()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(WARM_UP):
            next(reads)
        gc.collect()
        warm = tracemalloc.get_traced_memory()[0]
        for _ in reads:
            pass
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return end - warm


def _tcp_deframer() -> Iterator[None]:
    deframer = TcpDeframer()
    stream = frame_tcp(os.urandom(2048)) * (READ * READS // 2050 + 1)
    for start in range(0, READ * READS, READ):
        deframer.feed(stream[start : start + READ])
        yield


def _obfs4_handshake() -> Iterator[None]:
    """A hello without a mark, 1 KiB a read, until the client gives up (a driver then stops)."""
    client = obfs4_capture().handshake()
    failed = False
    for _ in range(READS):
        if not failed:
            client.receive_data(os.urandom(1024))
            try:
                assert client.next_event() is NEED_DATA
            except Obfs4Error:
                failed = True
        yield
    assert failed


def _obfs4_session() -> Iterator[None]:
    session = Obfs4Session(bytes(72), OBFS4_KEYS)
    encoder = FrameEncoder(OBFS4_KEYS)
    for _ in range(READS):
        session.receive_data(encoder.encode_data(os.urandom(READ - 2048)))
        while session.next_event() is not NEED_DATA:
            pass
        yield


def _openvpn_client(*, tcp: bool = False) -> OpenVPNClient:
    config = ClientConfig(build_context(generate_pki().ca), PeerRequirements(), "V4", "", tcp=tcp)
    client = OpenVPNClient(config, NoWrap(), unix_time=1.7e9)
    client.start(0.0)
    return client


def _openvpn_datagrams() -> Iterator[None]:
    client = _openvpn_client()
    wire = openvpn_wire("none")
    for index in range(READS * 32):
        client.receive(os.urandom(1200) if index % 2 else wire[index % len(wire)], 0.0)
        client.data_to_send(0.0)
        if index % 32 == 0:
            yield


def _openvpn_stream() -> Iterator[None]:
    """Over TCP the client deframes itself: frames of noise, in 64 KiB reads split mid-frame."""
    client = _openvpn_client(tcp=True)
    stream = frame_tcp(os.urandom(2048)) * (READ * READS // 2050 + 1)
    for start in range(0, READ * READS, READ):
        client.receive(stream[start : start + READ], 0.0)
        client.data_to_send(0.0)
        assert not client.finished
        yield


def _wireguard_initiator() -> Iterator[None]:
    """Datagrams of noise while a handshake waits: counted by kind, never kept."""
    peers = WireGuardPeers.generate()
    initiator = WireGuardInitiator(
        NoiseHandshake(peers.client_private, peers.server_public),
        timestamps=lambda: tai64n(10**18),
    )
    initiator.start(0.0)
    initiator.data_to_send(0.0)
    for index in range(READS * 32):
        initiator.receive(os.urandom(1400), 0.0)
        assert initiator.next_event() is None
        if index % 32 == 0:
            yield


@pytest.mark.parametrize(
    "feed",
    [
        _tcp_deframer,
        _obfs4_handshake,
        _obfs4_session,
        _openvpn_datagrams,
        _openvpn_stream,
        _wireguard_initiator,
    ],
    ids=lambda feed: feed.__name__.strip("_"),
)
def test_a_flood_leaves_a_bounded_amount_held(feed: Callable[[], Iterator[None]]) -> None:
    assert _growth(feed) < READ
