"""Capture ``openvpn_data.json``: the probe's data stage against the real openvpn 2.6 server.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_openvpn_data``. For
each cipher (and a server that pushes ``comp-lzo no``) a short tunnel test runs through the probe
driver with fixed randomness, announcing no TLS-EKM so that the server keys the data channel with
key-method 2's PRF, whose every input the capture can keep: TLS-EKM's come from OpenSSL's own
randomness. The capture demands a verified echo and keeps the data packets of both sides. The
keys are the lab run's and used nowhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path

from tests.vectors.capture_openvpn import UNIX_TIME, Recording, fixed_random
from tests.vectors.openvpn_data import VECTORS, DataCapture
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch import __version__
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import OpenVPNLab, RunningServer, ServerVariant
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.openvpn import CLIENT_VERSION, client_config
from vpnwatch.protocols.openvpn.client import OpenVPNClient
from vpnwatch.protocols.openvpn.datachannel import is_data_packet
from vpnwatch.protocols.openvpn.keymethod import peer_info
from vpnwatch.protocols.openvpn.tunnel import tunnel_addresses, tunnel_test
from vpnwatch.protocols.openvpn.wrappers import make_wrapper
from vpnwatch.quality import TrainPlan

TIMEOUT = 10.0
#: Two echoes: the server's replies are the known answers.
PLAN = TrainPlan(echoes=2, spacing=0.05, burst=0, hold_seconds=0, linger=0.3)
_CBC = ("data-ciphers AES-256-CBC", "data-ciphers-fallback AES-256-CBC", "auth SHA256")
VARIANTS = (
    ServerVariant("aes-256-gcm"),
    ServerVariant("aes-128-gcm", lines=("data-ciphers AES-128-GCM",)),
    ServerVariant("chacha20-poly1305", lines=("data-ciphers CHACHA20-POLY1305",)),
    ServerVariant(
        "aes-256-cbc", lines=_CBC, client_data=("data-ciphers AES-256-CBC", "auth SHA256")
    ),
    ServerVariant("comp-lzo-no", lines=("comp-lzo no", 'push "comp-lzo no"')),
)


async def capture(lab: OpenVPNLab, server: RunningServer, directory: Path) -> DataCapture:
    name = server.variant.name
    (target,) = load_ovpn(lab.write_client_file(server, directory / f"{name}.ovpn"))
    config = dataclasses.replace(
        client_config(target, tunnel=True),
        peer_info=peer_info(
            version=CLIENT_VERSION,
            ciphers=target.data_ciphers,
            monitor=f"vpnwatch_{__version__}",
            key_export=False,
        ),
    )
    wrapper = make_wrapper(target.tls_wrap, None)
    random_bytes, _ = fixed_random(f"data {name}")
    client = OpenVPNClient(config, wrapper, unix_time=UNIX_TIME, random_bytes=random_bytes)
    recording = Recording(tunnel_test(client, PLAN, tcp=False, random_bytes=random_bytes))
    result = await ProbeSpec(machine=lambda _: recording).probe()(target, TIMEOUT)
    if not result.ok or result.stage != "data":
        raise SystemExit(f"{name}: the probe of the real server failed: {result}")
    reply, sources = client.push_reply, client.key_sources
    assert reply is not None and sources is not None and client.remote_session_id is not None
    local, destination = tunnel_addresses(reply)

    def sent_by(side: str) -> tuple[bytes, ...]:
        steps = [step for step in recording.steps if step.side == side]
        return tuple(packet for step in steps for packet in step.data if is_data_packet(packet))

    return DataCapture(
        name=name,
        cipher=reply.cipher or "",
        digest=target.auth,
        compression=reply.compression,
        peer_id=reply.peer_id,
        client_session=client.session_id,
        server_session=client.remote_session_id,
        client_source=sources.pre_master + sources.client_random1 + sources.client_random2,
        server_source=sources.server_random1 + sources.server_random2,
        local=str(local),
        destination=str(destination),
        client_packets=sent_by("client"),
        server_packets=sent_by("server"),
    )


async def capture_all(lab: OpenVPNLab, directory: Path) -> list[DataCapture]:
    return [await capture(lab, lab.servers[v.name], directory) for v in VARIANTS]


def main() -> None:
    with Namespace() as namespace, tempfile.TemporaryDirectory() as work:
        lab = OpenVPNLab(namespace, Path(work))
        lab.start(VARIANTS, first_port=1594)
        captures = asyncio.run(capture_all(lab, Path(work)))
    write_vectors(
        VECTORS,
        "OpenVPN data-channel packets with the real server, keyed by key-method 2's "
        "PRF; written by python -m tests.vectors.capture_openvpn_data, replayed by "
        "tests/protocols/openvpn/test_ovpn_data_vectors.py",
        debian_versions("openvpn"),
        captures,
    )


if __name__ == "__main__":
    main()
