"""Anyone who can reach the port, and any file a user points to, is untrusted.

The HTTP endpoints are read-only and reload is off unless asked for; the files vpnwatch reads are
never written, nor anything created beside them.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.hardening.files import bridge_lines, ovpn_text, wgquick_text
from vpnwatch.cli import _parser
from vpnwatch.config import Config, Settings
from vpnwatch.jobs import Job
from vpnwatch.monitor import Monitor
from vpnwatch.probes.registry import PROBES
from vpnwatch.targets.control import TcpTarget

READ_ONLY = ["/metrics", "/api/targets", "/healthz", "/"]
WRITING_METHODS = ["POST", "PUT", "DELETE", "PATCH"]


async def _serving(*, enable_lifecycle: bool) -> AsyncIterator[str]:
    target = TcpTarget(name="closed", host="127.0.0.1", port=9)
    settings = Settings(interval=1, timeout=0.5, listen="127.0.0.1:0")
    config = Config(settings, (Job(target, 1, 0.5, "test"),))
    monitor = Monitor(lambda: config, PROBES, enable_lifecycle=enable_lifecycle)
    task = asyncio.create_task(monitor.run())
    try:
        for _ in range(200):
            if monitor.address is not None:
                break
            await asyncio.sleep(0.01)
        assert monitor.address is not None
        yield f"http://127.0.0.1:{monitor.address[1]}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def default_monitor() -> AsyncIterator[str]:
    async for base in _serving(enable_lifecycle=False):
        yield base


@pytest.fixture
async def lifecycle_monitor() -> AsyncIterator[str]:
    async for base in _serving(enable_lifecycle=True):
        yield base


async def test_endpoints_refuse_every_writing_method(default_monitor: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in READ_ONLY:
            async with session.get(default_monitor + path) as response:
                assert response.status == 200, path
            for method in WRITING_METHODS:
                async with session.request(method, default_monitor + path) as response:
                    assert response.status == 405, (method, path)


async def test_reload_is_off_unless_enabled(default_monitor: str, lifecycle_monitor: str) -> None:
    assert _parser().parse_args(["run", "x.conf"]).enable_lifecycle is False
    async with aiohttp.ClientSession() as session:
        async with session.post(default_monitor + "/-/reload") as response:
            assert response.status == 404
        async with session.post(lifecycle_monitor + "/-/reload") as response:
            assert response.status == 200
        async with session.get(lifecycle_monitor + "/-/reload") as response:
            assert response.status == 405  # and even then, only by POST


def _snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    return {
        str(path.relative_to(directory)): (
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_files_are_read_never_written(tmp_path: Path) -> None:
    host = "127.0.0.1"  # closed ports: the probes fail fast and touch no other network
    (tmp_path / "lab.conf").write_text(wgquick_text(f"{host}:9"))
    (tmp_path / "vpn.ovpn").write_text(ovpn_text(tmp_path, host, 9))
    (tmp_path / "lab.bridges").write_text(bridge_lines(host, 9))
    (tmp_path / "wg.key").write_text("QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\n")
    config = {
        "settings": {"interval": 1, "timeout": 0.5, "listen": "127.0.0.1:0"},
        "include": ["*.bridges"],
        "targets": [
            {"from": "lab.conf"},
            {"from": "vpn.ovpn"},
            {
                "name": "inline",
                "protocol": "wireguard",
                "host": host,
                "port": 9,
                "private_key_file": "wg.key",
                "public_key": "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=",
            },
        ],
    }
    (tmp_path / "vpnwatch.yml").write_text(yaml.safe_dump(config))
    for path in tmp_path.iterdir():
        path.chmod(0o400)
    time.sleep(0.01)  # so that any later write gets a later mtime
    before = _snapshot(tmp_path)

    cli = [sys.executable, "-m", "vpnwatch.cli"]
    for argv in (
        ["config", "check", "vpnwatch.yml"],
        ["check", "--config", "vpnwatch.yml"],
        ["check", "lab.conf", "vpn.ovpn", "lab.bridges"],
    ):
        proc = subprocess.run([*cli, *argv], cwd=tmp_path, capture_output=True, check=False)
        assert proc.returncode in (0, 1), proc.stderr.decode()
    log = tmp_path.parent / f"{tmp_path.name}-run.log"  # outside the directory under watch
    with log.open("wb") as stderr:
        run = subprocess.Popen(
            [*cli, "run", "--config", "vpnwatch.yml"], cwd=tmp_path, stderr=stderr
        )
    try:
        _wait_for(log, b"metrics at")  # logged just before the SIGHUP handler is installed
        time.sleep(0.2)
        run.send_signal(signal.SIGHUP)  # a reload reads every file again
        _wait_for(log, b"configuration reloaded")
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=10)
    assert _snapshot(tmp_path) == before


def _wait_for(log: Path, line: bytes) -> None:
    for _ in range(300):
        if line in log.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError(f"{line!r} never logged: {log.read_text()}")
