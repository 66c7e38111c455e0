"""A lab WireGuard server with thousands of registered peers, for the benchmarks' fleets.

:class:`vpnwatch.lab.wireguard.WireGuardServer` numbers its peers' tunnel addresses inside one /24
(253 peers) and configures each with its own ``wg set``: right for tests, too small and too slow
for a fleet of 10,000 monitor keys. This subclass gives the peers beyond the 253rd their IPv6
tunnel address alone (the server's /64 in 2001:2::/48, which this host routes nowhere; the
fleet's probes complete handshakes and send nothing through the tunnel), and registers peers in
chunks, a few hundred per ``wg`` call. It is the same wireguard-go, doing the same handshakes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from vpnwatch.lab.wireguard import IPV4_PEERS, WireGuardServer

#: Peers registered per ``wg set`` call: well below the kernel's limits on a command line.
PEERS_PER_CALL = 400


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class FleetWireGuardServer(WireGuardServer):
    """wireguard-go with up to four million peers, registered in bulk with :meth:`add_peers`."""

    _numbers: dict[bytes, int] = field(default_factory=dict, init=False, repr=False)

    def __enter__(self) -> FleetWireGuardServer:
        super().__enter__()
        return self

    def peer_address(self, public_key: bytes, *, ipv6: bool = False) -> str:
        return self._pool_address(self._numbers[public_key], ipv6=ipv6)

    def tunnel_addresses(self, public_key: bytes) -> tuple[str, ...]:
        if self._numbers[public_key] < IPV4_PEERS:
            return super().tunnel_addresses(public_key)
        return (f"{self.peer_address(public_key, ipv6=True)}/128",)

    def add_peer(self, public_key: bytes, preshared_key: bytes | None = None) -> str:
        self._numbers.setdefault(public_key, len(self._numbers))
        return super().add_peer(public_key, preshared_key)

    def add_peers(self, public_keys: Iterable[bytes]) -> None:
        """Register many peers (no preshared keys), a chunk per ``wg`` call once running."""
        fresh = [key for key in public_keys if key not in self._numbers]
        for key in fresh:
            self._numbers[key] = len(self._numbers)
            self._peers[key] = None
        if self._process is None:
            return  # start() configures every peer it holds
        for chunk in _chunks(fresh, PEERS_PER_CALL):
            argv = ["set", self.interface]
            for key in chunk:
                argv += ["peer", _b64(key), "allowed-ips", ",".join(self.tunnel_addresses(key))]
            self._wg(*argv)


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
