"""Capture ``shadowsocks.json``: the Shadowsocks client, its randomness fixed, against the real
ss-server (alone, behind obfs-server, and behind v2ray-plugin).

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_shadowsocks``. Each
capture runs the probe's machine through the driver against the lab's servers and writes down
what the client was given and the bytes each side sent; the unit tests replay them. The lab's
passwords are random per run, so each capture records the one it used.
"""

from __future__ import annotations

import asyncio
import time

from tests.vectors.capture_obfs4 import Recording, recording_random
from tests.vectors.shadowsocks import VECTORS, ShadowsocksCapture
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.proxies import CIPHERS, ProxyLab, proxy_lab
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.shadowsocks import shadowsocks_client

TIMEOUT = 10.0
#: capture name → (lab server, destination: "http" for generate_204 or "echo")
PLAN = {
    **{cipher: (cipher, "http") for cipher in CIPHERS},
    "aes-256-gcm-echo": ("aes-256-gcm", "echo"),
    "obfs-http": ("obfs-http", "http"),
    "obfs-tls": ("obfs-tls", "echo"),
    "v2ray-ws": ("v2ray-ws", "http"),
}


async def capture(
    name: str, lab: ProxyLab, server_name: str, destination: str
) -> ShadowsocksCapture:
    server = lab.shadowsocks[server_name]
    url = lab.generate_204 if destination == "http" else lab.echo
    target = server.target(name, url)
    random_bytes, draws = recording_random()
    unix_time = float(int(time.time()))
    client = shadowsocks_client(target, random_bytes=random_bytes, unix_time=unix_time)
    recording = Recording(client)  # type: ignore[arg-type]
    result = await ProbeSpec(machine=lambda _: recording).probe()(target, TIMEOUT)  # type: ignore[arg-type,return-value]
    if not result.ok:
        raise SystemExit(f"{name}: the probe of the real server failed: {result}")
    return ShadowsocksCapture(
        name=name,
        method=server.method,
        password=server.password,
        plugin=server.plugin,
        plugin_opts=server.plugin_opts,
        destination=url,
        port=server.port,
        unix_time=unix_time,
        draws=tuple(draws),
        transcript=tuple(recording.transcript),
    )


def main() -> None:
    with Namespace() as namespace, proxy_lab(namespace) as lab:
        captures = [
            asyncio.run(capture(name, lab, server, destination))
            for name, (server, destination) in PLAN.items()
        ]
    write_vectors(
        VECTORS,
        "Shadowsocks exchanges with the real servers; written by "
        "python -m tests.vectors.capture_shadowsocks, replayed by tests/protocols/shadowsocks",
        debian_versions(
            "shadowsocks-libev", "shadowsocks-v2ray-plugin", "simple-obfs", separator="; "
        ),
        captures,
    )


if __name__ == "__main__":
    main()
