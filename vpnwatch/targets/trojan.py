"""A Trojan server to probe: its password and the TLS name and trust it must show."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from vpnwatch.targets.proxy import ProxyTarget


class TrojanTarget(ProxyTarget):
    """One Trojan server; its certificate must verify for ``server_name`` (default: ``host``)."""

    protocol: Literal["trojan"] = "trojan"
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    password: SecretStr
    server_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    #: PEM certificates to verify against (``ca_file:``); the system's trust store when unset.
    ca: str | None = None
