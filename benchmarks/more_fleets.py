"""The in-monitor fleets of the protocols added after the first three: IKEv2, AnyConnect,
Shadowsocks and Trojan, each against its real server in a namespace of its own.

:func:`more_fleets` starts charon, ocserv and the proxies' lab, and yields, per protocol, the
:class:`~benchmarks.monitor_job.Fleet` that ``vpnwatch run`` probes and the probe-only row beside
it: a batch of the same target through ``run_probe`` (:func:`benchmarks.cost.run_batch`) and the
protocol's floor, measured in the same run, so that :func:`benchmarks.monitor_job.compare` can
set the three side by side as it does for WireGuard, OpenVPN and obfs4.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.anyconnect import tls_floor
from benchmarks.cost import CONCURRENCY, FLOOR_ROUNDS, _row, run_batch
from benchmarks.floors import shadowsocks_floor
from benchmarks.ikev2 import floor as ikev2_floor
from benchmarks.proxies import ANSWER_204
from benchmarks.proxies import targets as proxy_targets
from vpnwatch.importers import load_file
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.ocserv import OcservServer
from vpnwatch.lab.proxies import ProxyLab, proxy_lab
from vpnwatch.lab.strongswan import CharonGateway
from vpnwatch.protocols.relayed import Destination
from vpnwatch.targets.anyconnect import AnyConnectTarget
from vpnwatch.targets.base import TargetBase

#: The Shadowsocks server measured: the cipher its SIP002 links most often name, no plugin.
SHADOWSOCKS_CIPHER = "chacha20-ietf-poly1305"


@dataclass(frozen=True)
class Measured:
    """One protocol's fleet for ``vpnwatch run``, and its probe-only row from the same run."""

    #: The row's name: the protocol, then the setup measured.
    name: str
    #: YAML target entries; each names its own target.
    entries: list[dict[str, Any]]
    probe_only: dict[str, Any]

    @property
    def protocol(self) -> str:
        return self.name.split()[0]


@contextlib.contextmanager
def more_fleets(counts: dict[str, int], batch: int, directory: Path) -> Iterator[list[Measured]]:
    """The four protocols' fleets of ``counts[name]`` targets, their labs running meanwhile."""
    with contextlib.ExitStack() as stack:
        labs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vpnwatch-more-")))
        servers = _Servers(
            stack.enter_context(CharonGateway(stack.enter_context(Namespace()))),
            stack.enter_context(OcservServer(stack.enter_context(Namespace()), labs)),
            stack.enter_context(proxy_lab(stack.enter_context(Namespace()))),
        )
        yield asyncio.run(_measure(servers, counts, batch, directory))


@dataclass(frozen=True)
class _Servers:
    charon: CharonGateway
    ocserv: OcservServer
    proxies: ProxyLab


async def _measure(
    servers: _Servers, counts: dict[str, int], batch: int, directory: Path
) -> list[Measured]:
    charon, ocserv, proxies = servers.charon, servers.ocserv, servers.proxies
    size = max(CONCURRENCY, batch)
    ikev2_conf = charon.client_conf(directory / "ikev2", "psk").path
    [ikev2] = load_file(ikev2_conf)
    anyconnect = {
        "protocol": "anyconnect",
        "host": ocserv.host,
        "port": ocserv.port,
        "ca": ocserv.ca,
        "cert": ocserv.client_cert,
        "key": ocserv.client_key,
    }
    proxied = proxy_targets(proxies)
    shadowsocks = proxied[f"shadowsocks {SHADOWSOCKS_CIPHER}"]
    ss_link, trojan_link = directory / "shadowsocks.links", directory / "trojan.links"
    ss_link.write_text(proxies.shadowsocks[SHADOWSOCKS_CIPHER].link("shadowsocks") + "\n")
    trojan_link.write_text(proxies.trojan.link("trojan") + "\n")
    request = Destination.parse(proxies.generate_204).check().request
    tls = tls_floor(FLOOR_ROUNDS // 5)
    plan: list[tuple[str, TargetBase, list[dict[str, Any]], float, str]] = [
        (
            "ikev2 psk",
            ikev2,
            _named("ikev2", counts["ikev2"], {"from": str(ikev2_conf)}),
            ikev2_floor("psk", FLOOR_ROUNDS),
            "public-key work of the psk setup",
        ),
        (
            "anyconnect certificate",
            AnyConnectTarget.model_validate({**anyconnect, "name": "bench"}),
            _named("anyconnect", counts["anyconnect"], anyconnect),
            tls,
            "client side of the TLS handshake",
        ),
        (
            f"shadowsocks {SHADOWSOCKS_CIPHER}",
            shadowsocks,
            _named(
                "shadowsocks",
                counts["shadowsocks"],
                {"from": str(ss_link), "destination": proxies.generate_204},
            ),
            shadowsocks_floor(SHADOWSOCKS_CIPHER, FLOOR_ROUNDS, request, ANSWER_204),
            "HKDF and AEAD of one request and its answer",
        ),
        (
            "trojan",
            proxied["trojan"],
            _named(
                "trojan",
                counts["trojan"],
                {
                    "from": str(trojan_link),
                    "ca": proxies.trojan.ca,
                    "destination": proxies.generate_204,
                },
            ),
            tls,
            "client side of the TLS handshake",
        ),
    ]
    measured = []
    for name, target, entries, floor, floor_is in plan:
        batch_row = _row(await run_batch(name, [target], size), floor, floor_is)
        measured.append(Measured(name, entries, batch_row))
    return measured


def _named(prefix: str, count: int, entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**entry, "name": f"{prefix}-{index}"} for index in range(count)]
