"""CPU per AnyConnect probe against its floor: ``python -m benchmarks.anyconnect`` (root).

The probe's batch runs as part 1 (:mod:`benchmarks.cost`) runs the other protocols' — the
scheduler's call, a cap on probes in flight — against the lab's real ocserv in its own namespace,
whose work (a process per connection, its tunnel device) is not counted. The floor is the client's
side of the TLS handshake with the lab's certificates, as for OpenVPN: the one cryptographic step a
login cannot skip (ECDSA P-256, TLS 1.3). Everything above it is the XML login, HTTP, CSTP,
asyncio and sockets. Certificate logins and password logins (two form rounds more) are measured
apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.cost import CONCURRENCY, FLOOR_ROUNDS, _row, run_batch
from benchmarks.floors import openvpn_floor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.ocserv import GROUPS, USERNAME, OcservServer
from vpnwatch.lab.openvpn import Pki
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.targets.anyconnect import AnyConnectTarget

BATCH = 400


def tls_floor(rounds: int) -> float:
    """CPU seconds of the client's side of a TLS handshake with lab certificates (ECDSA P-256).

    The server's key is ocserv's (or trojan's); an in-process server with a key of the same kind
    stands in for it, and its side is not counted."""
    server = CertificateAuthority.create("floor CA")
    stand_in = server.issue("floor-server", server=True)
    client = server.issue("floor-client", server=False)
    return openvpn_floor(
        Pki(server.cert, stand_in.cert, stand_in.key, client.cert, client.key), rounds
    )


async def measure(
    gateway: OcservServer, count: int, profile_dir: Path | None = None
) -> dict[str, Any]:
    base = {"name": "bench", "host": gateway.host, "port": gateway.port, "ca": gateway.ca}
    logins = {
        "certificate": {"cert": gateway.client_cert, "key": gateway.client_key},
        "password": {"username": USERNAME, "password": gateway.password, "group": GROUPS[0]},
    }
    floor = tls_floor(FLOOR_ROUNDS // 5)
    rows = {}
    for name, fields in logins.items():
        target = AnyConnectTarget.model_validate({**base, **fields})
        profile = None if profile_dir is None else profile_dir / f"profile-anyconnect-{name}.txt"
        batch = await run_batch(f"anyconnect {name}", [target], count, profile_to=profile)
        rows[f"anyconnect {name}"] = _row(batch, floor, "client side of the TLS handshake")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anyconnect")
    parser.add_argument("--quick", action="store_true", help="a small batch, to check it runs")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile listings here")
    args = parser.parse_args()
    count = CONCURRENCY if args.quick else BATCH
    with (
        Namespace() as namespace,
        tempfile.TemporaryDirectory() as workdir,
        OcservServer(namespace, Path(workdir)) as gateway,
    ):
        rows = asyncio.run(measure(gateway, count, args.profile))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
