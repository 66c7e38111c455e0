"""The AnyConnect captures in ``anyconnect.json``: the plaintext inside TLS, both ways, in order.

TLS's randomness cannot be injected into OpenSSL, so the captures are taken inside it: what the
probe's :class:`~vpnwatch.protocols.anyconnect.session.AnyConnectSession` sent and what the real
ocserv answered, chunk by chunk, with the login it was given and how it ended. The session draws
no randomness, so a replay must produce the client's bytes exactly.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpnwatch.protocols.anyconnect.session import Login

VECTORS = Path(__file__).with_name("anyconnect.json")


@dataclass(frozen=True)
class AnyConnectCapture:
    login: Login
    #: ("client" | "server", bytes) in the order they passed.
    transcript: tuple[tuple[str, bytes], ...]
    stages: tuple[str, ...]
    failure: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "login": {
                "host": self.login.host,
                "port": self.login.port,
                "path": self.login.path,
                "group": self.login.group,
                "username": self.login.username,
                "password": self.login.password,
                "user_agent": self.login.user_agent,
            },
            "transcript": [
                [side, base64.b64encode(data).decode()] for side, data in self.transcript
            ],
            "stages": list(self.stages),
            "failure": self.failure,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnyConnectCapture:
        return cls(
            login=Login(**data["login"]),
            transcript=tuple((side, base64.b64decode(chunk)) for side, chunk in data["transcript"]),
            stages=tuple(data["stages"]),
            failure=data["failure"],
            detail=data["detail"],
        )


def load_captures() -> dict[str, AnyConnectCapture]:
    data = json.loads(VECTORS.read_text())
    return {name: AnyConnectCapture.from_json(item) for name, item in data["captures"].items()}
