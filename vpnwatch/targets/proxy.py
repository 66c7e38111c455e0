"""What the proxy targets (Shadowsocks, Trojan) share: the destination a probe asks them for.

``destination`` is what the proxy is asked to fetch: ``http://HOST[:PORT]/PATH``, whose answer
must have status ``expect_status`` (204 for the ``generate_204`` pages clients use to test a
proxy), or ``echo://HOST:PORT``, a service of your own that echoes what it receives.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from vpnwatch.protocols.relayed import Destination
from vpnwatch.targets.base import TargetBase

#: What proxy clients fetch to test a proxy when nothing else is said.
DEFAULT_DESTINATION = "http://www.gstatic.com/generate_204"


def _destination(url: str) -> str:
    try:
        Destination.parse(url)
    except ValueError as exc:
        raise ValueError(f"destination {exc}") from None
    return url


class ProxyTarget(TargetBase):
    """A proxy reached over TCP, probed by one request relayed through it."""

    destination: Annotated[str, Field(max_length=2048), AfterValidator(_destination)] = (
        DEFAULT_DESTINATION
    )
    expect_status: Annotated[int, Field(ge=100, le=599)] = 204

    @property
    def transport(self) -> str:
        return "tcp"

    @property
    def relay_destination(self) -> Destination:
        return Destination.parse(self.destination, self.expect_status)
