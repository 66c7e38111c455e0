"""Capture ``anyconnect.json``: the probe's AnyConnect session against the real ocserv.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_anyconnect``. Each
capture probes the lab's ocserv through the driver, as ``vpnwatch check`` does, and writes down
the plaintext inside TLS — the XML login, CONNECT and its answer, the CSTP packets — in the order
it passed, with the login the session was given and how it ended. The unit tests replay the
server's side with no network and demand the client's bytes back exactly.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from tests.vectors.anyconnect import VECTORS, AnyConnectCapture
from tests.vectors.written import debian_versions
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.ocserv import GROUPS, USERNAME, OcservServer
from vpnwatch.probes.anyconnect import login, tls_channel
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.anyconnect.client import AnyConnectClient
from vpnwatch.protocols.anyconnect.session import AnyConnectSession
from vpnwatch.protocols.machine import Event, Failed, StageCompleted
from vpnwatch.targets.anyconnect import AnyConnectTarget

TIMEOUT = 10.0


class RecordingSession(AnyConnectSession):
    """The probe's session, writing down the plaintext that passes and the events it makes."""

    def __init__(self, target: AnyConnectTarget) -> None:
        super().__init__(login(target))
        self.given = login(target)
        self.transcript: list[tuple[str, bytes]] = []
        self.stages: list[str] = []
        self.failure: str | None = None
        self.detail = ""

    def receive(self, data: bytes, now: float) -> None:
        if data:
            self.transcript.append(("server", data))
        super().receive(data, now)

    def data_to_send(self, now: float) -> list[bytes]:
        out = super().data_to_send(now)
        if out:
            self.transcript.append(("client", b"".join(out)))
        return out

    def next_event(self) -> Event | None:
        event = super().next_event()
        if isinstance(event, StageCompleted):
            self.stages.append(event.stage)
        elif isinstance(event, Failed):
            self.failure, self.detail = event.failure.value, event.detail
        elif event is not None and hasattr(event, "detail"):
            self.detail = event.detail
        return event

    def capture(self) -> AnyConnectCapture:
        return AnyConnectCapture(
            self.given, tuple(self.transcript), tuple(self.stages), self.failure, self.detail
        )


async def _capture(target: AnyConnectTarget) -> AnyConnectCapture:
    sessions: list[RecordingSession] = []

    def machine(target: AnyConnectTarget) -> AnyConnectClient:
        sessions.append(RecordingSession(target))
        return AnyConnectClient(tls_channel(target), sessions[-1])

    await ProbeSpec(machine=machine).probe()(target, TIMEOUT)
    return sessions[-1].capture()


def main() -> None:
    with (
        Namespace() as namespace,
        tempfile.TemporaryDirectory() as workdir,
        OcservServer(namespace, Path(workdir)) as gateway,
    ):
        base: dict[str, Any] = {
            "name": "lab", "host": gateway.host, "port": gateway.port, "ca": gateway.ca
        }  # fmt: skip
        password = {"username": USERNAME, "password": gateway.password, "group": GROUPS[0]}
        plan = {
            "password": {**base, **password},
            "wrong-password": {**base, **password, "password": "not-the-password"},
            "certificate": {**base, "cert": gateway.client_cert, "key": gateway.client_key},
        }
        captures = {
            name: asyncio.run(_capture(AnyConnectTarget.model_validate(fields)))
            for name, fields in plan.items()
        }
    VECTORS.write_text(
        json.dumps(
            {
                "about": "python -m tests.vectors.capture_anyconnect; base64 plaintext inside TLS",
                "server": debian_versions("ocserv"),
                "captures": {name: capture.to_json() for name, capture in captures.items()},
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
