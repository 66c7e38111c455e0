"""Control targets: plain TCP, TLS and DNS checks from the same vantage point.

They are not VPNs. They answer the question a failing VPN probe raises: is it the endpoint, or is
it our own network? A site whose controls fail is ``offline``, not evidence of blocking.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from vpnwatch.targets.base import Role, TargetBase

Port = Annotated[int, Field(ge=1, le=65535)]


class TcpTarget(TargetBase):
    """A TCP connect: succeeds when the three-way handshake completes."""

    protocol: Literal["tcp"] = "tcp"
    role: Role = "control"

    @property
    def transport(self) -> str:
        return "tcp"


class TlsTarget(TargetBase):
    """A TLS handshake whose certificate verifies for ``server_name`` (default: ``host``)."""

    protocol: Literal["tls"] = "tls"
    role: Role = "control"
    port: Port = 443
    server_name: str | None = None
    #: PEM certificates to verify against (``ca_file:`` in a config reads them from a file);
    #: the system's trust store when unset.
    ca: str | None = None

    @property
    def transport(self) -> str:
        return "tcp"


class DnsTarget(TargetBase):
    """A query to the resolver at ``host``: succeeds when it answers the question it was asked."""

    protocol: Literal["dns"] = "dns"
    role: Role = "control"
    port: Port = 53
    query: Annotated[str, Field(min_length=1, max_length=253)]
    record_type: Literal["A", "AAAA", "NS", "TXT"] = "A"

    @property
    def transport(self) -> str:
        return "udp"
