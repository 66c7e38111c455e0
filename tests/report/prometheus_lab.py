"""A real Prometheus on loopback, serving a TSDB backfilled with promtool: for tests and benchmarks.

Backfilled blocks lie in the past (the scenarios use fixed dates in 2024), so they never overlap
the head block Prometheus is writing. Time retention counts back from the newest block, so a long
retention keeps a month-long benchmark history whole. The server scrapes nothing.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

READY_TIMEOUT = 120.0


def backfill(openmetrics: Path, tsdb: Path) -> None:
    """Turn an OpenMetrics file into TSDB blocks under ``tsdb``."""
    tsdb.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics),
         str(tsdb)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"promtool failed on {openmetrics}: {done.stderr.strip()[-2000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(tsdb: Path, workdir: Path) -> Iterator[str]:
    """Run Prometheus on ``tsdb`` until the block exits; yields its base URL."""
    config = workdir / "prometheus.yml"
    config.write_text("scrape_configs: []\n")
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tsdb}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"prometheus at {url} not ready after {READY_TIMEOUT:g} s")
