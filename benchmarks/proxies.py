"""CPU per probe of Shadowsocks (each cipher and plugin) and Trojan, against the AEAD floor.

Run as root: ``python -m benchmarks.proxies [--scale 0.2] [--out FILE]``. The lab's real servers
(ss-server, obfs-server, ss-v2ray-plugin, trojan) answer in a namespace; each row is a batch of
probes through :func:`benchmarks.cost.run_batch`, the same measurement the other protocols get,
beside the cryptographic floor of one request (:func:`benchmarks.floors.shadowsocks_floor`:
two HKDF-SHA1 subkeys, sealing the request, opening the answer). Trojan's floor is a TLS
handshake, which the answer's check adds nothing to; it is shown without one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from benchmarks.cost import CONCURRENCY, FLOOR_ROUNDS, run_batch
from benchmarks.floors import shadowsocks_floor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.proxies import ProxyLab, proxy_lab
from vpnwatch.protocols.relayed import Destination
from vpnwatch.targets.shadowsocks import ShadowsocksTarget
from vpnwatch.targets.trojan import TrojanTarget

BATCH = 400
#: What the lab's generate_204 answers: the answer a floor's request opens.
ANSWER_204 = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


def targets(lab: ProxyLab) -> dict[str, ShadowsocksTarget | TrojanTarget]:
    rows: dict[str, ShadowsocksTarget | TrojanTarget] = {
        f"shadowsocks {name}": server.target(name, lab.generate_204, ca=lab.trojan.ca)
        for name, server in lab.shadowsocks.items()
    }
    trojan = lab.trojan
    rows["trojan"] = TrojanTarget(
        name="trojan",
        host=trojan.host,
        port=trojan.port,
        password=trojan.password,  # type: ignore[arg-type]
        server_name=trojan.server_name,
        ca=trojan.ca,
        destination=lab.generate_204,
    )
    return rows


async def measure(lab: ProxyLab, scale: float) -> dict[str, Any]:
    request = Destination.parse(lab.generate_204).check().request
    rows: dict[str, Any] = {}
    for name, target in targets(lab).items():
        batch = await run_batch(name, [target], max(CONCURRENCY, int(BATCH * scale)))
        row: dict[str, Any] = {
            "probes": batch.probes,
            "ok": batch.ok,
            "outcomes": batch.outcomes,
            "cpu_per_probe_us": round(batch.cpu_per_probe * 1e6),
            "probes_per_second": round(batch.probes / batch.wall),
        }
        if isinstance(target, ShadowsocksTarget):
            floor = shadowsocks_floor(target.method, FLOOR_ROUNDS, request, ANSWER_204)
            row["floor_us"] = round(floor * 1e6, 1)
            row["ratio_to_floor"] = round(batch.cpu_per_probe / floor, 1)
        rows[name] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the batches (quick run)")
    parser.add_argument("--out", type=Path, help="write the JSON here as well")
    args = parser.parse_args()
    with Namespace() as namespace, proxy_lab(namespace) as lab:
        rows = asyncio.run(measure(lab, args.scale))
    text = json.dumps(rows, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
