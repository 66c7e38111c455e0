"""The obfs4 probe against the real obfs4proxy, in a lab namespace this module creates.

Failures only a dishonest server produces (an AUTH that does not verify, a hello with no data
behind it) come from a relay in front of the real bridge that changes its bytes with the standard
library's HMAC, not from a server built of the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from tests.vectors.obfs4 import ServerHello
from vpnwatch.importers.bridgeline import load_bridge_lines
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge, Obfs4Server
from vpnwatch.probes.obfs4 import OBFS4
from vpnwatch.result import Failure, Result
from vpnwatch.targets.obfs4 import Obfs4Target, encode_cert

pytestmark = pytest.mark.lab

OK_TIMEOUT = 5.0
FAIL_TIMEOUT = 1.5
IAT_PORTS = {0: 4443, 1: 4444}
probe_obfs4 = OBFS4.probe()


@pytest.fixture(scope="module")
def bridges(namespace: Namespace) -> Iterator[dict[int, Obfs4Bridge]]:
    with (
        Obfs4Server(namespace, iat_mode=0, port=IAT_PORTS[0]) as plain,
        Obfs4Server(namespace, iat_mode=1, port=IAT_PORTS[1]) as timed,
    ):
        yield {0: plain, 1: timed}


def lab_target(
    bridge: Obfs4Bridge, write: Callable[[str, str], Path], **changes: object
) -> Obfs4Target:
    """The lab bridge as a user would add it: its published bridge line, through the importer."""
    [target] = load_bridge_lines(write("lab.txt", bridge.bridge_line() + "\n")).targets
    return target.model_copy(update=changes)


def stage_names(result: Result) -> list[str]:
    return [stage for stage, _ in result.stages]


@pytest.mark.parametrize("iat_mode", [0, 1])
async def test_bridge_line_handshakes(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path], iat_mode: int
) -> None:
    target = lab_target(bridges[iat_mode], write)
    assert target.iat_mode == iat_mode
    result = await probe_obfs4(target, OK_TIMEOUT)
    assert result.ok, result
    assert (result.stage, stage_names(result)) == (
        "handshake",
        ["resolve", "connect", "handshake"],
    )
    assert "AUTH verified" in result.detail


@pytest.mark.parametrize("iat_mode", [0, 1])
async def test_data_echoes_through_the_session(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path], iat_mode: int
) -> None:
    result = await probe_obfs4(lab_target(bridges[iat_mode], write, data="echo"), OK_TIMEOUT)
    assert result.ok, result
    assert (result.stage, stage_names(result)) == (
        "data",
        ["resolve", "connect", "handshake", "data"],
    )
    assert "bytes echoed" in result.detail


async def test_wrong_cert_times_out(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    """The real server answers a wrong cert with silence, as a probe-resistant bridge must."""
    target = lab_target(bridges[0], write, node_id=os.urandom(20))
    result = await probe_obfs4(target, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TIMEOUT, "handshake")
    assert stage_names(result) == ["resolve", "connect"]


async def test_closed_port_is_refused(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    result = await probe_obfs4(lab_target(bridges[0], write, port=4999), FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.REFUSED, "connect")


@contextmanager
def reset_data_to(namespace: Namespace, port: int) -> Iterator[None]:
    """A censor in the namespace answering every data-bearing segment to ``port`` with a RST."""
    namespace.exec(
        ["nft", "-f", "-"],
        input_=(
            "table inet vpnwatch_censor {\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    tcp dport {port} meta length > 120 reject with tcp reset\n"
            "  }\n"
            "}\n"
        ),
    )
    try:
        yield
    finally:
        namespace.exec(["nft", "delete", "table", "inet", "vpnwatch_censor"])


async def test_reset_mid_handshake(
    namespace: Namespace, bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    with reset_data_to(namespace, IAT_PORTS[0]):
        result = await probe_obfs4(lab_target(bridges[0], write), OK_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.RESET, "handshake")
    assert stage_names(result) == ["resolve", "connect"]


def unchanged(hello: ServerHello) -> bytes:
    return hello.raw


@asynccontextmanager
async def relay(
    bridge: Obfs4Bridge,
    hello: Callable[[ServerHello], bytes] = unchanged,
    *,
    then_forward: bool = True,
) -> AsyncIterator[tuple[str, int]]:
    """A relay on loopback to the real bridge that hands the client ``hello(the bridge's hello)``
    instead of the bridge's own and then, if ``then_forward``, what the bridge sends after it."""
    mac_key = bridge.identity.public_key + bridge.identity.node_id

    async def upstream(client: asyncio.StreamReader, server: asyncio.StreamWriter) -> None:
        while data := await client.read(65536):
            server.write(data)
            await server.drain()

    async def downstream(server: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        received = b""
        while (found := ServerHello.find(received, mac_key, time.time())) is None:
            if not (data := await server.read(65536)):
                return
            received += data
        client.write(hello(found) + (received[len(found.raw) :] if then_forward else b""))
        while data := await server.read(65536):
            if then_forward:
                client.write(data)
            await client.drain()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(bridge.host, bridge.port)
        except OSError:
            writer.close()
            return
        pumps = {
            asyncio.create_task(upstream(reader, server_writer)),
            asyncio.create_task(downstream(server_reader, writer)),
        }
        try:
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in pumps:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
        finally:
            writer.close()
            server_writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        address = server.sockets[0].getsockname()
        yield address[0], address[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_server_without_the_private_key_fails_auth(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    """The real hello with AUTH changed and the MAC made right again, as anyone holding the
    bridge line could: the MAC verifies, AUTH does not."""
    async with relay(bridges[0], ServerHello.with_auth_flipped) as (host, port):
        result = await probe_obfs4(lab_target(bridges[0], write, host=host, port=port), OK_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.AUTH, "handshake")
    assert stage_names(result) == ["resolve", "connect"]
    assert "AUTH" in result.detail


async def test_relay_that_changes_nothing_passes(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    """The same relay without tampering succeeds, so the failure above is the AUTH alone."""
    async with relay(bridges[0]) as (host, port):
        target = lab_target(bridges[0], write, host=host, port=port, data="echo")
        result = await probe_obfs4(target, OK_TIMEOUT)
    assert result.ok, result


async def test_data_that_never_comes_back_times_out_at_data(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    """The real hello gets through but nothing after it does: the data stage is what fails."""
    async with relay(bridges[0], then_forward=False) as (host, port):
        target = lab_target(bridges[0], write, host=host, port=port, data="echo")
        result = await probe_obfs4(target, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TIMEOUT, "data")
    assert stage_names(result) == ["resolve", "connect", "handshake"]


@asynccontextmanager
async def hostile_server(reply: bytes) -> AsyncIterator[int]:
    """A loopback server that answers any connection with ``reply`` and then hangs up."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("reply", "failure"),
    [(os.urandom(9000), Failure.PROTOCOL), (os.urandom(500), Failure.EOF), (b"", Failure.EOF)],
)
async def test_garbage_servers_are_classified(reply: bytes, failure: Failure) -> None:
    async with hostile_server(reply) as port:
        cert = encode_cert(os.urandom(20), os.urandom(32))
        target = Obfs4Target.model_validate(
            {"name": "hostile", "host": "127.0.0.1", "port": port, "cert": cert}
        )
        result = await probe_obfs4(target, OK_TIMEOUT)
    assert (result.failure, result.stage) == (failure, "handshake")


@pytest.mark.slow
async def test_two_hundred_handshakes_in_a_row(
    bridges: dict[int, Obfs4Bridge], write: Callable[[str, str], Path]
) -> None:
    target = lab_target(bridges[0], write)
    failed = []
    for attempt in range(200):
        result = await probe_obfs4(target, OK_TIMEOUT)
        if not result.ok:
            failed.append((attempt, result.failure, result.detail))
    assert failed == []
