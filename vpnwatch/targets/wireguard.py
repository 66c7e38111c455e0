"""A WireGuard peer to probe, as a wg-quick ``[Peer]`` with its interface's private key."""

from __future__ import annotations

from typing import Literal

from vpnwatch.targets.base import PublicKey32, SecretKey32, TargetBase


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

    @property
    def transport(self) -> str:
        return "udp"
