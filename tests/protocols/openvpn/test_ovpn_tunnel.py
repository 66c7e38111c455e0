"""The handshake that keeps its session, and OpenVPN's data plane for the tunnel test, against
the in-memory server of test_ovpn_client.py: no sockets, time moved by hand.

The keys the server side uses here are the client's own (derivation is proven against the real
server's packets in test_ovpn_data_vectors.py); these tests are about the plumbing: no EXIT until
the test ends, TCP framing across reads, control packets acknowledged in the middle of data, and
nothing a peer sends raising.
"""

from __future__ import annotations

import functools
import ipaddress
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocols.openvpn.test_ovpn_client import UNIX_TIME, FakeServer, StreamServer
from tests.vectors.openvpn import P_ACK_V1, P_CONTROL_V1, Packet, Plain, frame
from vpnwatch.lab.openvpn import Pki, generate_pki
from vpnwatch.protocols import ip
from vpnwatch.protocols.machine import Completed, Failed, MachineBase, StageCompleted
from vpnwatch.protocols.openvpn.client import ClientConfig, OpenVPNClient
from vpnwatch.protocols.openvpn.datachannel import DataChannel, make_suite
from vpnwatch.protocols.openvpn.datakeys import DataKeys, prf_key_block
from vpnwatch.protocols.openvpn.keymethod import peer_info
from vpnwatch.protocols.openvpn.push import PullPolicy, parse_options
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.openvpn.tunnel import (
    OpenVPNTunnel,
    SayGoodbye,
    TunnelAddressError,
    tunnel_address6,
    tunnel_addresses,
)
from vpnwatch.protocols.openvpn.wrappers import NoWrap
from vpnwatch.result import Failure

PUSH = (
    b"PUSH_REPLY,route-gateway 198.19.0.1,topology subnet,ping 10,"
    b"ifconfig 198.19.0.2 255.255.255.0,peer-id 3,cipher AES-256-GCM"
)
LOCAL, SERVER = ipaddress.IPv4Address("198.19.0.2"), ipaddress.IPv4Address("198.19.0.1")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return generate_pki()


def kept_session(
    pki: Pki, tmp: Path, *, tcp: bool = False, push: bytes = PUSH, fallback: str | None = None
) -> tuple[OpenVPNClient, FakeServer]:
    """A handshake with the fake server that keeps its session, run to completion."""
    config = ClientConfig(
        tls_context=build_context(pki.ca),
        peer_requirements=PeerRequirements(),
        options="V4,dev-type tun,tls-client",
        peer_info=peer_info(version="2.6.0", ciphers="AES-256-GCM", monitor="test"),
        tcp=tcp,
        tunnel=True,
        digest="SHA256",
        pull_policy=PullPolicy(fallback_cipher=fallback),
    )
    counter = iter(range(1, 1 << 30))
    client = OpenVPNClient(
        config, NoWrap(), unix_time=UNIX_TIME, random_bytes=lambda n: bytes([next(counter)]) * n
    )
    server = FakeServer(pki, tmp, answer=push)
    stream = StreamServer(server, 65536)
    client.start(0.0)
    events = []
    for _ in range(20):
        for wire in client.data_to_send(0.0):
            stream.receive(wire) if tcp else server.receive(wire)
        while (event := client.next_event()) is not None:
            events.append(event)
        if client.finished:
            break
        for data in stream.reads(0.0) if tcp else server.packets(0.0):
            client.receive(data, 0.0)
    assert events[-2] == StageCompleted("auth") and isinstance(events[-1], Completed), events
    return client, server


@functools.cache
def shared_session() -> OpenVPNClient:
    """One kept session for the property test (a TLS handshake per example would be slow)."""
    client, _ = kept_session(generate_pki(), Path(tempfile.mkdtemp(prefix="vpnwatch-test-")))
    return client


def server_channel(
    client: OpenVPNClient, cipher: str = "AES-256-GCM", digest: str = "SHA1"
) -> DataChannel:
    """The server's side of the client's data channel: the same block, directions swapped."""
    sources = client.key_sources
    assert sources is not None and client.remote_session_id is not None
    keys = DataKeys.for_client(prf_key_block(sources, client.session_id, client.remote_session_id))
    return DataChannel(
        make_suite(cipher, digest), DataKeys(send=keys.receive, receive=keys.send), peer_id=3
    )


def test_a_kept_session_keys_the_data_channel_and_says_no_exit(pki: Pki, tmp_path: Path) -> None:
    client, server = kept_session(pki, tmp_path)
    assert client.data_channel is not None and client.data_channel.suite.name == "AES-256-GCM"
    assert not server.exit_received
    client.say_goodbye()
    for wire in client.data_to_send(1.0):
        server.receive(wire)
    assert server.exit_received


def test_a_server_that_pushes_no_cipher_gets_the_fallback(pki: Pki, tmp_path: Path) -> None:
    """An old server negotiates nothing: the data channel is the file's data-ciphers-fallback,
    with its ``auth`` digest."""
    push = PUSH.replace(b",cipher AES-256-GCM", b"")
    client, _ = kept_session(pki, tmp_path, push=push, fallback="AES-128-CBC")
    assert client.data_channel is not None and client.data_channel.suite.name == "AES-128-CBC"
    mirror = server_channel(client, "AES-128-CBC", "SHA256")
    packet = ip.echo_request(LOCAL, SERVER, 1, 1, b"")
    assert mirror.open(OpenVPNTunnel(client, tcp=False).seal(packet)[0]) == packet


@pytest.mark.parametrize("tcp", [False, True])
def test_echoes_travel_both_ways_with_control_packets_between(
    pki: Pki, tmp_path: Path, tcp: bool
) -> None:
    client, server = kept_session(pki, tmp_path, tcp=tcp)
    tunnel = OpenVPNTunnel(client, tcp=tcp)
    mirror = server_channel(client)
    request = ip.echo_request(LOCAL, SERVER, 7, 1, b"token")
    (sent,) = tunnel.seal(request)
    assert mirror.open(sent[2:] if tcp else sent) == request
    reply = ip.answer(request)
    assert reply is not None
    # A control message arrives before the echo's answer: it must be acknowledged.
    assert client.remote_session_id is not None
    late = Packet(P_CONTROL_V1, client.remote_session_id, (), None, 11, b"\x17\x03\x03\x00\x01x")
    control = [Plain().seal(late, int(UNIX_TIME))]
    data = mirror.seal(reply)
    if tcp:
        stream = b"".join(frame(p) for p in control) + frame(data)
        reads = [stream[:5], stream[5:-3], stream[-3:]]
        assert [inner for read in reads for inner in tunnel.open(read)] == [reply]
    else:
        assert [tunnel.open(packet) for packet in control] == [[]] * len(control)
        assert tunnel.open(data) == [reply]
    assert tunnel.open(frame(data) if tcp else data) == []  # a replay
    assert tunnel.rejected == 1
    assert tunnel.flush() == []
    # The control message is acknowledged with the handshake machine's own output.
    for wire in client.data_to_send(1.0):
        (StreamServer(server, 65536).receive(wire) if tcp else server.receive(wire))
    assert server.received[-1].opcode == P_ACK_V1 and 11 in server.received[-1].acks


@settings(deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_garbage_after_the_handshake_never_opens_nor_raises(garbage: list[bytes]) -> None:
    tunnel = OpenVPNTunnel(shared_session(), tcp=False)
    for data in garbage:
        assert tunnel.open(data) == []


def test_a_handshake_that_did_not_key_a_data_channel_has_no_tunnel(pki: Pki) -> None:
    config = ClientConfig(
        tls_context=build_context(pki.ca),
        peer_requirements=PeerRequirements(),
        options="",
        peer_info="",
    )
    with pytest.raises(ValueError, match="data channel"):
        OpenVPNTunnel(OpenVPNClient(config, NoWrap(), unix_time=UNIX_TIME), tcp=False)


@pytest.mark.parametrize(
    ("options", "addresses"),
    [
        (["ifconfig 198.19.0.2 255.255.255.0", "route-gateway 198.19.0.1"], (LOCAL, SERVER)),
        (["ifconfig 10.8.0.2 10.8.0.1"], ("10.8.0.2", "10.8.0.1")),  # p2p
        (  # net30: the remote end is virtual; the host route leads to the server
            ["route 10.8.0.1", "topology net30", "ifconfig 10.8.0.6 10.8.0.5"],
            ("10.8.0.6", "10.8.0.1"),
        ),
        (["topology net30", "ifconfig 10.8.0.6 10.8.0.5"], ("10.8.0.6", None)),
        (
            [
                "route 10.9.0.0 255.255.0.0",
                "route 10.8.0.1 255.255.255.255",
                "topology net30",
                "ifconfig 10.8.0.6 10.8.0.5",
            ],
            ("10.8.0.6", "10.8.0.1"),
        ),
        (["ifconfig 198.19.0.2 255.255.255.0", "route-gateway dhcp"], (LOCAL, None)),
        (["ifconfig 198.19.0.2 255.255.255.0"], (LOCAL, None)),
    ],
)
def test_tunnel_addresses(options: list[str], addresses: tuple[object, object]) -> None:
    local, server = tunnel_addresses(parse_options(options))
    expected = tuple(None if a is None else ipaddress.IPv4Address(a) for a in addresses)  # type: ignore[arg-type]
    assert (local, server) == expected


@pytest.mark.parametrize(
    "options", [[], ["route-gateway 198.19.0.1"], ["ifconfig not-an-address 255.255.255.0"]]
)
def test_tunnel_addresses_refuses_a_push_without_usable_ifconfig(options: list[str]) -> None:
    with pytest.raises(TunnelAddressError):
        tunnel_addresses(parse_options(options))


def test_tunnel_address6() -> None:
    reply = parse_options(["ifconfig-ipv6 2001:2:0:fe00::1000/64 2001:2:0:fe00::1"])
    assert tunnel_address6(reply) == ipaddress.IPv6Address("2001:2:0:fe00::1000")
    for options in ([], ["ifconfig-ipv6 198.19.0.2/24 198.19.0.1"]):
        with pytest.raises(TunnelAddressError):
            tunnel_address6(parse_options(options))


class _Ends(MachineBase):
    def __init__(self, failed: bool) -> None:
        super().__init__()
        self._failed = failed

    def start(self, now: float) -> None:
        super().start(now)
        if self._failed:
            self._fail(Failure.TIMEOUT, "nothing")
        else:
            self._complete("done")

    def receive(self, data: bytes, now: float) -> None:
        """Nothing to read."""


@pytest.mark.parametrize("failed", [False, True])
def test_say_goodbye_once_before_the_end_is_passed_on(failed: bool) -> None:
    said: list[str] = []
    machine = SayGoodbye(_Ends(failed), lambda: said.append("EXIT"))
    machine.start(0.0)
    event = machine.next_event()
    assert isinstance(event, Failed if failed else Completed) and said == ["EXIT"]
    assert machine.next_event() is None and said == ["EXIT"]
