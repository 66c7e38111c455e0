"""The obfs4 driver: connect, handshake until the server's AUTH verifies, optionally echo data.

Stages: ``connect`` (TCP up) → ``handshake`` (the server's hello found, its MAC checked and its
ntor AUTH tag verified) → ``data`` (only for targets with ``data: echo``: random bytes sent through
the obfs4 session came back intact). A bridge given the wrong cert stays silent, so that shows as
``timeout`` at ``handshake``, as it does for a censor that drops the flow.
"""

from __future__ import annotations

import asyncio
import os
import time

from vpnwatch.probes.net import close_writer, connect_tcp, guarded
from vpnwatch.protocols.obfs4 import (
    NEED_DATA,
    ClientHandshake,
    DataReceived,
    HandshakeCompleted,
    Obfs4Error,
    Obfs4Session,
    ServerAuthFailed,
)
from vpnwatch.result import Failure, ProbeFailed, Result, Timeline
from vpnwatch.targets.obfs4 import Obfs4Target

#: Spans two frames, so the echo exercises frame boundaries in both directions.
ECHO_LENGTH = 2048
_READ_SIZE = 65536


async def probe_obfs4(target: Obfs4Target, timeout: float) -> Result:
    plan = ("connect", "handshake", "data") if target.data == "echo" else ("connect", "handshake")
    timeline = Timeline(target.name, "obfs4", plan=plan)
    return await guarded(timeline, timeout, lambda: _probe(target, timeline))


async def _probe(target: Obfs4Target, timeline: Timeline) -> str:
    reader, writer = await connect_tcp(target.host, target.port)
    try:
        timeline.reached("connect")
        session = await _handshake(target, reader, writer)
        timeline.reached("handshake")
        if target.data == "echo":
            await _echo(session, reader, writer)
            timeline.reached("data")
            return f"server AUTH verified; {ECHO_LENGTH} bytes echoed through the session"
        return "server AUTH verified"
    except ServerAuthFailed as exc:
        raise ProbeFailed(Failure.AUTH, str(exc)) from None
    except Obfs4Error as exc:
        raise ProbeFailed(Failure.PROTOCOL, str(exc)) from None
    finally:
        await close_writer(writer)


async def _handshake(
    target: Obfs4Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Obfs4Session:
    handshake = ClientHandshake(target.node_id, target.public_key, now=time.time())
    writer.write(handshake.data_to_send())
    await writer.drain()
    while (event := handshake.next_event()) is NEED_DATA:
        handshake.receive_data(await _read(reader))
    assert isinstance(event, HandshakeCompleted)
    session = Obfs4Session.for_client(event.key_material)
    session.receive_data(event.trailing)
    return session


async def _echo(
    session: Obfs4Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    sent = os.urandom(ECHO_LENGTH)
    writer.write(session.send(sent))
    await writer.drain()
    received = b""
    while len(received) < len(sent):
        event = session.next_event()
        if isinstance(event, DataReceived):
            received += event.data
        else:
            session.receive_data(await _read(reader))
    if received != sent:
        raise ProbeFailed(Failure.PROTOCOL, "the bytes echoed through the session differ")


async def _read(reader: asyncio.StreamReader) -> bytes:
    chunk = await reader.read(_READ_SIZE)
    if not chunk:
        raise ProbeFailed(Failure.EOF, "the bridge closed the connection")
    return chunk
