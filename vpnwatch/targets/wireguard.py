"""A WireGuard peer to probe, as a wg-quick ``[Peer]`` with its interface's private key."""

from __future__ import annotations

import ipaddress
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import IPvAnyAddress, IPvAnyInterface, field_validator, model_validator

from vpnwatch.targets.base import PublicKey32, SecretKey32, TargetBase

#: Any private key will do: every scalar maps a low-order point to the all-zero secret.
_PROBE_SCALAR = X25519PrivateKey.from_private_bytes(bytes(range(32)))


class WireGuardTarget(TargetBase):
    """One WireGuard endpoint and the keys to handshake with it.

    ``private_key`` must be a key of the monitor's own, registered as a peer on the server: a real
    user's key would make the server roam that user's endpoint to the monitor.
    """

    protocol: Literal["wireguard"] = "wireguard"
    private_key: SecretKey32
    public_key: PublicKey32
    preshared_key: SecretKey32 | None = None
    #: After a verified handshake, also send an encrypted keepalive so that the server records the
    #: handshake (``wg show`` latest handshake); off means the server never sees it complete.
    keepalive: bool = True
    #: The interface's tunnel addresses (wg-quick ``Address``): where echoes come from.
    address: tuple[IPvAnyInterface, ...] = ()
    #: The address inside the tunnel echoes go to: the server's tunnel address (from a
    #: single-host ``AllowedIPs`` entry, or given). Tunnel tests need it and an ``address`` of
    #: its IP version.
    ping: IPvAnyAddress | None = None

    @model_validator(mode="after")
    def _ping_has_a_source(self) -> WireGuardTarget:
        if self.ping is not None and self.address and self.source is None:
            raise ValueError(
                f"ping: {self.ping} is IPv{self.ping.version}, but no address is: echoes to it"
                " need a source address of the same version"
            )
        return self

    @property
    def source(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The tunnel address echoes to :attr:`ping` come from."""
        if self.ping is None:
            return None
        return next((a.ip for a in self.address if a.version == self.ping.version), None)

    @property
    def tunnel_ready(self) -> bool:
        return self.source is not None

    @field_validator("public_key")
    @classmethod
    def _usable(cls, key: bytes) -> bytes:
        """A low-order point gives an all-zero shared secret: no server can hold such a key."""
        try:
            _PROBE_SCALAR.exchange(X25519PublicKey.from_public_bytes(key))
        except ValueError:
            raise ValueError("is a low-order point, which no WireGuard server can hold") from None
        return key

    @property
    def transport(self) -> str:
        return "udp"
