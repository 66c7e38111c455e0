"""Capture ``tor.json``: the Tor link client, its randomness fixed, against the real tor bridge.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_tor``. The probe runs
as it always does (obfs4 to obfs4proxy, TLS, then the link handshake with tor behind it); the
capture records what crossed between TLS and :class:`TorLinkClient` (the cells in the clear), the
TLS certificate the relay presented, the time and every draw of randomness. The unit tests replay
the cells with no network; the captures stay valid as long as the relay's certificates were valid
at the recorded time, which the client is given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

from tests.vectors.capture_obfs4 import Recording, recording_random
from tests.vectors.tor import VECTORS, TorCapture
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge
from vpnwatch.lab.tor import TorBridgeServer
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.obfs4.client import Obfs4Client
from vpnwatch.protocols.tor.channel import TorChannelClient
from vpnwatch.protocols.tor.link import TorLinkClient
from vpnwatch.targets.obfs4 import Obfs4Target

TIMEOUT = 10.0


async def capture(name: str, bridge: Obfs4Bridge) -> TorCapture:
    assert bridge.relay_fingerprint is not None
    fingerprint = bridge.relay_fingerprint
    random_bytes, draws = recording_random()
    unix_time = float(int(time.time()))
    address = ipaddress.ip_address(bridge.host)
    recordings: list[tuple[bytes, Recording]] = []

    def link(certificate: bytes) -> Recording:
        client = TorLinkClient(
            fingerprint,
            certificate,
            unix_time=unix_time,
            peer_address=address,
            random_bytes=random_bytes,
        )
        recordings.append((certificate, Recording(client)))
        return recordings[-1][1]

    machine = Obfs4Client(
        bridge.identity.node_id,
        bridge.identity.public_key,
        unix_time=unix_time,
        inner=TorChannelClient(link),
    )
    target = Obfs4Target(
        name=name,
        host=bridge.host,
        port=bridge.port,
        node_id=bridge.identity.node_id,
        public_key=bridge.identity.public_key,
    )
    result = await ProbeSpec(machine=lambda _: machine).probe()(target, TIMEOUT)
    if not result.ok:
        raise SystemExit(f"{name}: the probe of the real bridge failed: {result}")
    [(certificate, recording)] = recordings
    return TorCapture(
        name=name,
        fingerprint=fingerprint,
        unix_time=unix_time,
        peer_address=bridge.host,
        tls_certificate=certificate,
        draws=tuple(draws),
        transcript=tuple(recording.transcript),
    )


def main() -> None:
    with Namespace() as namespace, TorBridgeServer(namespace) as bridge:
        captures = [asyncio.run(capture("link", bridge))]
    write_vectors(
        VECTORS,
        "Tor link handshakes with the real tor bridge, the cells inside TLS; written by "
        "python -m tests.vectors.capture_tor, replayed by tests/protocols/tor",
        debian_versions("obfs4proxy", "tor"),
        captures,
    )


if __name__ == "__main__":
    main()
