"""The WireGuard probe against the real wireguard-go, in a lab namespace this module creates.

The probe is what the scheduler runs: the one driver with WireGuard's spec. Its stages are
``resolve`` then ``handshake``; what the network or server did is a Result's failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import pytest
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from tests.vectors.capture_wireguard import overload
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer, generate_preshared_key
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import Failure, LocalError, LocalReason, Result
from vpnwatch.targets.base import parse_endpoint
from vpnwatch.targets.wireguard import WireGuardTarget

pytestmark = pytest.mark.lab

OK_TIMEOUT = 5.0
FAIL_TIMEOUT = 1.0
#: Long enough for one retransmission (after 5 to 5.333 s) to be answered.
RETRY_TIMEOUT = 8.0

wireguard_probe = PROBES["wireguard"]  # what the scheduler runs


@pytest.fixture(scope="module")
def server() -> Iterator[WireGuardServer]:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        yield server


def new_client(server: WireGuardServer, preshared_key: bytes | None = None) -> KeyPair:
    client = KeyPair.generate()
    server.add_peer(client.public, preshared_key)
    return client


def target(
    server: WireGuardServer, client: KeyPair, *, ipv6: bool = False, **fields: Any
) -> WireGuardTarget:
    host, port = parse_endpoint(server.endpoint(ipv6=ipv6))
    values: dict[str, Any] = {
        "name": "lab",
        "host": host,
        "port": port,
        "private_key": client.private_b64,
        "public_key": server.keys.public_b64,
    }
    values.update(fields)
    return WireGuardTarget.model_validate(values)


def assert_ok(result: Result) -> None:
    assert result.ok, result
    assert result.failure is None
    assert result.stage == "handshake"
    assert [stage for stage, _ in result.stages] == ["resolve", "handshake"]
    assert result.duration > 0


async def wait_for_handshake(server: WireGuardServer, client: KeyPair) -> int:
    """The server's record of the client's handshake, given up to 5 s to appear (0 if not).

    It waits on the event loop, so that a relay's task can still carry the keepalive there.
    """
    for _ in range(100):
        if recorded := server.latest_handshake(client.public):
            return recorded
        await asyncio.sleep(0.05)
    return 0


async def test_good_config_completes_and_the_server_records_it(server: WireGuardServer) -> None:
    client = new_client(server)
    result = await wireguard_probe(target(server, client), OK_TIMEOUT)
    assert_ok(result)
    assert result.detail == "handshake verified"
    assert await wait_for_handshake(server, client) > 0


async def test_without_keepalive_the_server_never_confirms(server: WireGuardServer) -> None:
    client = new_client(server)
    assert_ok(await wireguard_probe(target(server, client, keepalive=False), OK_TIMEOUT))
    assert server.latest_handshake(client.public) == 0
    assert_ok(await wireguard_probe(target(server, client), OK_TIMEOUT))
    assert await wait_for_handshake(server, client) > 0


@pytest.mark.slow
async def test_a_hundred_probes_in_a_row_on_one_key(server: WireGuardServer) -> None:
    probe = target(server, new_client(server))
    results = [await wireguard_probe(probe, OK_TIMEOUT) for _ in range(100)]
    assert [r for r in results if not r.ok] == []


async def test_concurrent_probes_of_one_key_all_succeed(server: WireGuardServer) -> None:
    probe = target(server, new_client(server))
    results = await asyncio.gather(*(wireguard_probe(probe, OK_TIMEOUT) for _ in range(10)))
    assert [r for r in results if not r.ok] == []


async def test_client_key_unknown_to_the_server_times_out(server: WireGuardServer) -> None:
    result = await wireguard_probe(target(server, KeyPair.generate()), FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TIMEOUT, "handshake")
    assert not result.ok


async def test_wrong_server_public_key_times_out(server: WireGuardServer) -> None:
    wrong = KeyPair.generate().public_b64
    result = await wireguard_probe(
        target(server, new_client(server), public_key=wrong), FAIL_TIMEOUT
    )
    assert (result.failure, result.stage) == (Failure.TIMEOUT, "handshake")


async def test_closed_port_is_refused(server: WireGuardServer) -> None:
    probe = target(server, new_client(server), port=server.port + 1)
    result = await wireguard_probe(probe, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.REFUSED, "handshake")


async def test_name_that_does_not_resolve_is_dns(server: WireGuardServer) -> None:
    """What the network said about the name (``dns``, in ``resolve``): a Result against the
    endpoint, not a LocalError, as what this host runs out of would be."""
    probe = target(server, new_client(server), host="vpn.vpnwatch-test.invalid")
    result = await wireguard_probe(probe, FAIL_TIMEOUT)
    assert (result.failure, result.stage, result.stages) == (Failure.DNS, "resolve", ())
    assert "vpn.vpnwatch-test.invalid" in result.detail


async def test_a_host_out_of_file_descriptors_is_a_local_error(server: WireGuardServer) -> None:
    """EMFILE is this host's trouble, not the endpoint's: a LocalError, never a Result."""
    probe = target(server, new_client(server))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))  # no new descriptor, for a moment
    try:
        with pytest.raises(LocalError) as error:
            await wireguard_probe(probe, FAIL_TIMEOUT)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert error.value.reason is LocalReason.FILE_DESCRIPTORS
    assert_ok(await wireguard_probe(probe, OK_TIMEOUT))


async def test_preshared_key_peer_completes(server: WireGuardServer) -> None:
    psk = generate_preshared_key()
    client = new_client(server, psk)
    assert_ok(await wireguard_probe(target(server, client, preshared_key=psk), OK_TIMEOUT))
    assert await wait_for_handshake(server, client) > 0


@pytest.mark.parametrize("client_psk", [generate_preshared_key(), None], ids=["wrong", "missing"])
async def test_preshared_key_mismatch_is_auth(
    server: WireGuardServer, client_psk: bytes | None
) -> None:
    client = new_client(server, generate_preshared_key())
    result = await wireguard_probe(target(server, client, preshared_key=client_psk), OK_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.AUTH, "handshake")
    assert server.latest_handshake(client.public) == 0


async def test_ipv6_endpoint_completes(server: WireGuardServer) -> None:
    client = new_client(server)
    probe = target(server, client, ipv6=True)
    assert probe.endpoint.startswith("[2001:2:")
    assert_ok(await wireguard_probe(probe, OK_TIMEOUT))


def test_client_config_names_the_server_and_hides_nothing_it_should_not(
    server: WireGuardServer,
) -> None:
    psk = generate_preshared_key()
    client = new_client(server, psk)
    text = server.client_config(client, ipv6=True)
    assert f"PrivateKey = {client.private_b64}" in text  # the file a user holds has it
    assert f"PublicKey = {server.keys.public_b64}" in text
    assert f"Endpoint = {server.endpoint(ipv6=True)}" in text
    assert "PresharedKey = " in text
    assert client.private_b64 not in repr(client)


# --- a stopped server, and what else may answer on the way ------------------------------------------


async def test_stopped_server_is_refused_and_restarts_with_the_same_keys() -> None:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        client = new_client(server)
        probe = target(server, client)
        assert_ok(await wireguard_probe(probe, OK_TIMEOUT))
        server.stop()
        assert (await wireguard_probe(probe, FAIL_TIMEOUT)).failure is Failure.REFUSED
        server.start()
        assert_ok(await wireguard_probe(probe, OK_TIMEOUT))
        assert await wait_for_handshake(server, client) > 0


STRAY_DATAGRAMS = [
    b"\xff" * 92,  # garbage of a response's length
    b"\x02\x00\x00\x00" + bytes(40),  # a response too short
    b"\x02\x00\x00\x00" + bytes(88),  # a response to index 0 (not ours, which is random)
]


Lost = Literal["initiation", "response"]


class _Relay(asyncio.DatagramProtocol):
    """A loopback UDP endpoint between the probe and the real server (or none).

    It answers every datagram with ``strays`` first; with ``cookie_key`` it answers the first
    initiation with a cookie reply, as a server under load does; the rest it relays to the server,
    and the server's answer back. ``lose`` drops the first initiation, or the server's first
    answer, as a lossy path does. ``received`` keeps what the probe sent.
    """

    def __init__(
        self,
        upstream: tuple[str, int] | None,
        strays: list[bytes],
        cookie_key: bytes | None,
        lose: Lost | None = None,
    ) -> None:
        self.upstream = upstream
        self.strays = strays
        self.cookie_key = cookie_key
        self.lose = lose
        self.answers = 0
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.received.append(data)
        for stray in self.strays:
            self.transport.sendto(stray, addr)
        first = len(self.received) == 1
        if self.cookie_key is not None and first:
            self.transport.sendto(self._cookie_reply(data, self.cookie_key), addr)
        elif self.lose == "initiation" and first:
            pass
        elif self.upstream is not None:
            asyncio.get_running_loop().create_task(self._relay(data, addr))

    @staticmethod
    def _cookie_reply(initiation: bytes, key: bytes) -> bytes:
        nonce = os.urandom(24)
        mac1 = initiation[116:132]
        sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(os.urandom(16), mac1, nonce, key)
        return b"\x03\x00\x00\x00" + initiation[4:8] + nonce + sealed

    async def _relay(self, data: bytes, client: tuple[str, int]) -> None:
        assert self.transport is not None and self.upstream is not None
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[bytes] = asyncio.Queue()
        upstream, _ = await loop.create_datagram_endpoint(
            lambda: _Collector(answers), remote_addr=self.upstream
        )
        try:
            upstream.sendto(data)
            answer = await asyncio.wait_for(answers.get(), OK_TIMEOUT)
            self.answers += 1
            if not (self.lose == "response" and self.answers == 1):
                self.transport.sendto(answer, client)
        finally:
            upstream.close()


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, answers: asyncio.Queue[bytes]) -> None:
        self.answers = answers

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answers.put_nowait(data)


@asynccontextmanager
async def relay(
    server: WireGuardServer | None,
    *,
    strays: list[bytes] = STRAY_DATAGRAMS,
    cookie: bool = False,
    lose: Lost | None = None,
) -> AsyncIterator[tuple[int, _Relay]]:
    """A relay on 127.0.0.1 in front of ``server``; yields its port and itself."""
    upstream = parse_endpoint(server.endpoint()) if server else None
    cookie_key = (
        hashlib.blake2s(b"cookie--" + server.public_key).digest() if cookie and server else None
    )
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Relay(upstream, strays, cookie_key, lose), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1], protocol
    finally:
        transport.close()


async def test_stray_datagrams_are_ignored_while_waiting(server: WireGuardServer) -> None:
    async with relay(server) as (port, _):
        probe = target(server, new_client(server), host="127.0.0.1", port=port)
        assert_ok(await wireguard_probe(probe, OK_TIMEOUT))


async def test_only_garbage_in_reply_is_protocol(server: WireGuardServer) -> None:
    async with relay(None) as (port, _):
        probe = target(server, new_client(server), host="127.0.0.1", port=port)
        result = await wireguard_probe(probe, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.PROTOCOL, "handshake")
    assert "ignored 3 datagrams" in result.detail


async def test_cookie_reply_is_answered_by_one_retry_with_mac2(server: WireGuardServer) -> None:
    client = new_client(server)
    async with relay(server, strays=[], cookie=True) as (port, seen):
        probe = target(server, client, host="127.0.0.1", port=port)
        result = await wireguard_probe(probe, OK_TIMEOUT)
    assert_ok(result)
    assert "after a cookie reply" in result.detail
    first, retry = seen.received[:2]
    assert (first[:4], retry[:4]) == (b"\x01\x00\x00\x00", b"\x01\x00\x00\x00")
    assert first[132:] == bytes(16)  # no cookie yet: mac2 is zero
    assert retry[132:] != bytes(16)  # the retry carries mac2
    assert retry[8:40] != first[8:40]  # with a fresh ephemeral key (and timestamp)


async def test_a_server_under_load_sends_a_cookie_and_takes_the_retry_with_mac2() -> None:
    """wireguard-go under load (an eighth of its handshake queue waiting) answers an initiation
    without a valid mac2 with a cookie reply, and checks the mac2 of the next one: it answers the
    probe's retry only if that carries the mac2 of the cookie it sent."""
    with Namespace() as namespace, WireGuardServer(namespace) as loaded:
        client = new_client(loaded)
        overload(loaded)
        result = await wireguard_probe(target(loaded, client), OK_TIMEOUT)
        assert await wait_for_handshake(loaded, client) > 0
    assert_ok(result)
    assert result.detail == "handshake verified after a cookie reply"


async def test_a_lost_datagram_costs_a_retransmission_not_the_probe(
    server: WireGuardServer,
) -> None:
    """As wireguard-go does, the probe initiates again after REKEY_TIMEOUT; the real server takes
    the new initiation whether the first was lost or only its answer (which it sent, having
    accepted the first: the retry's newer timestamp and fresh index let it start over)."""

    async def lossy(lose: Lost) -> tuple[Result, list[bytes]]:
        client = new_client(server)
        async with relay(server, strays=[], lose=lose) as (port, seen):
            probe = target(server, client, host="127.0.0.1", port=port)
            result = await wireguard_probe(probe, RETRY_TIMEOUT)
            assert await wait_for_handshake(server, client) > 0  # the keepalive went through
        return result, seen.received

    for result, sent in await asyncio.gather(lossy("initiation"), lossy("response")):
        assert_ok(result)
        first, retry = sent[:2]
        assert (first[:4], retry[:4]) == (b"\x01\x00\x00\x00", b"\x01\x00\x00\x00")
        assert retry[4:8] != first[4:8] and retry[8:40] != first[8:40]  # new index and key
        assert 5.0 <= dict(result.stages)["handshake"] <= RETRY_TIMEOUT


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("icmp", ["host-unreachable", "no-route"])
async def test_icmp_unreachable_is_unreachable(icmp: str, ipv6: bool) -> None:
    with Namespace() as namespace:
        for rule in (
            "add table inet lab",
            "add chain inet lab input { type filter hook input priority 0; }",
            f"add rule inet lab input udp dport 51820 reject with icmpx type {icmp}",
        ):
            namespace.exec(["nft", rule])
        probe = WireGuardTarget(
            name="lab",
            host=namespace.ip6 if ipv6 else namespace.ip,
            port=51820,
            private_key=KeyPair.generate().private_b64,
            public_key=KeyPair.generate().public_b64,
        )
        result = await wireguard_probe(probe, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.UNREACHABLE, "handshake")
