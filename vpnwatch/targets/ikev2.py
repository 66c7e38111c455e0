"""An IKEv2/IPsec gateway to probe, with how a road-warrior client authenticates to it.

Our side authenticates with exactly one of: a pre-shared key (``psk``), a certificate and key
(``cert``, ``key``), or EAP-MSCHAPv2 (``username``, ``password``). The gateway proves itself with a
certificate chaining to ``ca`` that names ``remote_id`` (``remote_auth: pubkey``, the default when
a CA is given) or with the same pre-shared key (``remote_auth: psk``). Secrets are read from
files with ``psk_file``, ``key_file`` and ``password_file``, like every other target's.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.payloads import GROUPS
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.pem import Certificate, Certificates, PrivateKey

DEFAULT_PORT = 500
_IdentityText = Annotated[str, Field(min_length=1, max_length=1024)]


def _identity(text: str) -> str:
    try:
        Identity.parse(text)
    except ValueError as exc:
        raise ValueError(f"is not an IKE identity: {exc}") from None
    return text


class IKEv2Target(TargetBase):
    """One IKEv2 gateway (UDP 500, then 4500) and the credentials of the monitor's own account."""

    protocol: Literal["ikev2"] = "ikev2"
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PORT
    #: Our IKE identity (IDi); for EAP it defaults to the username.
    local_id: _IdentityText | None = None
    #: The identity the gateway must prove (IDr and its certificate); None accepts any its
    #: certificate names.
    remote_id: _IdentityText | None = None
    remote_auth: Literal["pubkey", "psk"] | None = None
    psk: SecretStr | None = None
    cert: Certificate | None = Field(default=None, repr=False)
    key: PrivateKey | None = None
    username: str | None = None
    password: SecretStr | None = None
    #: PEM CA certificates the gateway's certificate must chain to.
    ca: Certificates | None = Field(default=None, repr=False)
    #: Diffie-Hellman groups offered, the first one's key sent in IKE_SA_INIT.
    groups: tuple[int, ...] = (19, 20, 31, 14)
    #: An IPv4 address behind the gateway that answers ping: the probe's ``data`` stage.
    echo: ipaddress.IPv4Address | None = None

    @property
    def transport(self) -> str:
        return "udp"

    @property
    def tunnel_ready(self) -> bool:
        """Tunnel tests ping ``echo`` from the inner address the gateway assigns."""
        return self.echo is not None

    @field_validator("local_id", "remote_id")
    @classmethod
    def _identities_parse(cls, value: str | None) -> str | None:
        return None if value is None else _identity(value)

    @field_validator("groups")
    @classmethod
    def _known_groups(cls, groups: tuple[int, ...]) -> tuple[int, ...]:
        unknown = [g for g in groups if g not in GROUPS]
        if not groups or unknown or len(set(groups)) != len(groups):
            raise ValueError(f"must be distinct Diffie-Hellman groups from {list(GROUPS)}")
        return groups

    @model_validator(mode="after")
    def _one_way_in(self) -> IKEv2Target:
        ways = [
            name
            for name, given in (
                ("psk", self.psk is not None),
                ("cert and key", self.cert is not None or self.key is not None),
                ("username and password", self.username is not None or self.password is not None),
            )
            if given
        ]
        if len(ways) != 1:
            raise ValueError(
                "give exactly one way to authenticate: psk, cert and key, or username and password"
                + (f" (got {' and '.join(ways)})" if ways else "")
            )
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together: give both or neither")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.local_id is None and self.username is None:
            raise ValueError("local_id is required unless a username is given")
        if self.effective_remote_auth == "pubkey" and self.ca is None:
            raise ValueError("ca is required to check the gateway's certificate")
        if self.effective_remote_auth == "psk" and self.psk is None:
            raise ValueError("remote_auth psk needs psk")
        return self

    @property
    def effective_remote_auth(self) -> str:
        """How the gateway must prove itself: as configured, else a certificate unless only a
        PSK was given."""
        if self.remote_auth is not None:
            return self.remote_auth
        return "psk" if self.psk is not None and self.ca is None else "pubkey"
