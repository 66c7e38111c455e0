"""The monitor end to end against the lab's wireguard-go: metrics, state changes, reload, scale."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from vpnwatch.config import load_config
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.monitor import Monitor
from vpnwatch.probes.registry import PROBES

pytestmark = pytest.mark.lab

INTERVAL = 0.5


@pytest.fixture
def lab() -> Iterator[WireGuardServer]:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        yield server


def write_config(
    directory: Path, server: WireGuardServer, names: list[str], **settings: object
) -> Path:
    """A config with one good target per name, plus ``broken``: a port nothing listens on.

    Each good target has a client key of its own: a probe spaces the initiations of one key pair,
    so targets sharing a key would take turns, and a slow machine would see one wait out its slot.
    The key files are written once per name, so that rewriting the config for a reload leaves the
    targets it keeps unchanged.
    """
    for name in [*names, "broken"]:
        path = directory / f"{name}.conf"
        if not path.exists():
            client = KeyPair.generate()
            server.add_peer(client.public)
            text = server.client_config(client)
            path.write_text(text.replace(f":{server.port}", ":9") if name == "broken" else text)
    targets = [
        {"from": f"{name}.conf", "name": name, "labels": {"provider": "lab"}} for name in names
    ]
    config = {
        "settings": {"interval": INTERVAL, "timeout": 0.4, "listen": "127.0.0.1:0", **settings},
        "targets": [*targets, {"from": "broken.conf", "name": "broken"}],
    }
    path = directory / "vpnwatch.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


class Running:
    """A Monitor running in this event loop, with a client for its HTTP endpoints."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.monitor = Monitor(lambda: load_config(config), PROBES, enable_lifecycle=True)

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.monitor.run())
        self.session = aiohttp.ClientSession()
        for _ in range(100):
            if self.monitor.address:
                break
            await asyncio.sleep(0.02)
        host, port = self.monitor.address
        self.base = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def get(self, path: str) -> str:
        async with self.session.get(self.base + path) as response:
            assert response.status == 200, await response.text()
            return await response.text()

    async def metrics(self) -> dict:
        return samples(await self.get("/metrics"))

    async def metrics_once(self, condition: Callable[[dict], bool], limit: float = 15.0) -> dict:
        """The metrics as soon as ``condition`` holds of them, or after ``limit`` seconds.

        A loaded machine probes late, not never: the test waits for what it asserts, bounded.
        """
        deadline = time.monotonic() + limit
        while True:
            metrics = await self.metrics()
            if condition(metrics) or time.monotonic() > deadline:
                return metrics
            await asyncio.sleep(INTERVAL / 2)


async def test_metrics_show_good_and_broken_targets(lab, tmp_path):
    good = {"target": "good", "protocol": "wireguard", "provider": "lab"}
    broken = {"target": "broken", "protocol": "wireguard", "provider": ""}
    failures = {**broken, "failure": "refused", "stage": "handshake"}

    def counts(metrics: dict) -> tuple[float, float]:
        return (
            value(metrics, "vpnwatch_probes_total", **good) or 0,
            value(metrics, "vpnwatch_probe_failures_total", **failures) or 0,
        )

    async with Running(write_config(tmp_path, lab, ["good"])) as running:
        first = await running.metrics_once(lambda m: min(counts(m)) > 0)
        await running.metrics_once(
            lambda m: (
                all(a > b for a, b in zip(counts(m), counts(first), strict=True))
                and (value(m, "vpnwatch_handshake_duration_seconds_count", **good) or 0) >= 3
            )
        )
        text = await running.get("/metrics")
        api = await running.session.get(running.base + "/api/targets")
        targets = {t["target"]: t for t in await api.json()}
    later = samples(text)
    assert value(later, "vpnwatch_probe_success", **good) == 1
    assert (
        value(later, "vpnwatch_probes_total", **good)
        > value(first, "vpnwatch_probes_total", **good)
        > 0
    )
    assert value(later, "vpnwatch_probe_success", **broken) == 0
    assert value(later, "vpnwatch_probe_failures_total", **failures) > value(
        first, "vpnwatch_probe_failures_total", **failures
    )
    assert value(later, "vpnwatch_handshake_duration_seconds_count", **good) >= 3
    assert value(later, "vpnwatch_handshake_duration_seconds_bucket", **good, le="+Inf") >= 3
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert targets["good"]["success_ratio"] == 1.0
    assert targets["broken"]["last_result"]["failure"] == "refused"
    assert targets["good"]["last_success_timestamp_seconds"] > time.time() - 60


async def test_stopping_and_restarting_the_server_logs_two_transitions(lab, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vpnwatch")
    good = {"target": "good", "protocol": "wireguard", "provider": "lab"}
    async with Running(write_config(tmp_path, lab, ["good"])) as running:
        await running.metrics_once(lambda m: value(m, "vpnwatch_probe_success", **good) == 1)
        caplog.clear()
        lab.stop()
        stopped = await running.metrics_once(
            lambda m: value(m, "vpnwatch_probe_success", **good) == 0
        )
        lab.start()
        restarted = await running.metrics_once(
            lambda m: value(m, "vpnwatch_probe_success", **good) == 1
        )
    assert value(stopped, "vpnwatch_probe_success", **good) == 0
    assert value(restarted, "vpnwatch_probe_success", **good) == 1
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("target good ")]
    assert len(lines) == 2, lines
    assert "ok → failing" in lines[0] and "failing → ok after" in lines[1]


async def test_reload_adds_and_removes_targets_and_survives_a_broken_config(lab, tmp_path):
    kept = {"target": "kept", "protocol": "wireguard", "provider": "lab"}
    added = {"target": "added", "protocol": "wireguard", "provider": "lab"}

    def probed(metrics: dict, labels: dict[str, str], more_than: float) -> bool:
        return (value(metrics, "vpnwatch_probes_total", **labels) or 0) > more_than

    config = write_config(tmp_path, lab, ["kept", "removed"])
    async with Running(config) as running:
        before = await running.metrics_once(lambda m: probed(m, kept, 0))
        write_config(tmp_path, lab, ["kept", "added"])
        response = await running.session.post(running.base + "/-/reload")
        assert response.status == 200, await response.text()
        count = value(before, "vpnwatch_probes_total", **kept) or 0
        after = await running.metrics_once(lambda m: probed(m, kept, count) and probed(m, added, 0))
        frozen_after_reload = gc.get_freeze_count()
        config.write_text("settings: {intervall: 1}\n")
        response = await running.session.post(running.base + "/-/reload")
        assert response.status == 500
        assert "intervall" in await response.text()
        count = value(after, "vpnwatch_probes_total", **kept) or 0
        broken = await running.metrics_once(lambda m: probed(m, kept, count))
    assert value(before, "vpnwatch_probes_total", **kept)
    assert frozen_after_reload > 0  # the configuration's objects: out of the full collections
    assert value(after, "vpnwatch_probes_total", **kept) > value(
        before, "vpnwatch_probes_total", **kept
    )
    assert (
        value(
            after, "vpnwatch_probes_total", target="removed", protocol="wireguard", provider="lab"
        )
        is None
    )
    assert value(after, "vpnwatch_probes_total", **added) >= 1
    assert value(broken, "vpnwatch_config_last_reload_successful") == 0
    assert value(broken, "vpnwatch_probes_total", **kept) > value(
        after, "vpnwatch_probes_total", **kept
    )


def test_sigterm_stops_the_process_promptly_and_sighup_reloads(lab, tmp_path):
    config = write_config(tmp_path, lab, ["good"])
    process = subprocess.Popen(
        [sys.executable, "-m", "vpnwatch.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        lines = [wait_for_line(process.stderr, "metrics at")]  # logged once SIGHUP is handled
        os.kill(process.pid, signal.SIGHUP)
        lines.append(wait_for_line(process.stderr, "configuration reloaded"))
        os.kill(process.pid, signal.SIGTERM)
        _, rest = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 0, rest
    assert "configuration reloaded: 2 targets" in lines[1]
    assert "stopped" in rest
    assert "Traceback" not in "".join(lines) + rest


def wait_for_line(stream: IO[str], text: str, limit: int = 100) -> str:
    """Read lines until one contains ``text`` (at most ``limit`` lines)."""
    for _ in range(limit):
        line = stream.readline()
        if text in line:
            return line
    raise AssertionError(f"{text!r} was never logged")


@pytest.mark.slow
async def test_a_thousand_targets_are_each_probed_on_schedule(lab, tmp_path):
    """1,000 targets on closed ports of the lab host at a 5 s interval, for 60 s: counts only."""
    client = KeyPair.generate()
    targets = []
    for i in range(1000):
        # Each closed port stands for another server, with a key of its own: the probe spaces
        # initiations per (client key, server key) pair, as the real server requires.
        path = tmp_path / f"t{i}.conf"
        path.write_text(
            f"[Interface]\nPrivateKey = {client.private_b64}\n[Peer]\n"
            f"PublicKey = {KeyPair.generate().public_b64}\nEndpoint = {lab.namespace.ip}:{20000 + i}\n"
        )
        targets.append({"from": path.name})
    config = tmp_path / "vpnwatch.yml"
    config.write_text(
        yaml.safe_dump(
            {"settings": {"interval": 5, "timeout": 2, "listen": "127.0.0.1:0"}, "targets": targets}
        )
    )
    async with Running(config) as running:
        await asyncio.sleep(60)
        stats = {name: s.probes for name, s in running.monitor.metrics.targets.items()}
    counts = sorted(stats.values())
    assert len(counts) == 1000
    # 60 s / 5 s = 12 probes, less one for the random first offset; ±10 % jitter moves at most one.
    assert counts[0] >= 10, counts[:10]
    assert counts[-1] <= 13, counts[-10:]
