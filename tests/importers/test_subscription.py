"""Subscription URLs: fetched from a real HTTP server on loopback, refreshed, and kept when a
refresh fails — the fetch's failure visible apart from the proxies'."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_metrics import registry_with
from vpnwatch import cli
from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers.subscription import SUBSCRIPTIONS, Subscriptions, fetch_url
from vpnwatch.metrics import Metrics
from vpnwatch.monitor import Monitor
from vpnwatch.result import Result

TOKEN = "tok-9f8e7d6c"
LINKS = (
    "ss://" + base64.urlsafe_b64encode(b"aes-128-gcm:pw").decode() + "@192.0.2.1:8388#one\n"
    "vmess://eyJ2IjoiMiJ9\n"
    "trojan://pw@192.0.2.2:443#two\n"
)


class Provider:
    """A provider's web server on loopback whose answer the test changes."""

    def __init__(self) -> None:
        self.status = 200
        self.body = base64.b64encode(LINKS.encode())
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(provider.status)
                self.end_headers()
                self.wfile.write(provider.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sub/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    yield provider
    provider.server.shutdown()
    provider.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_refresh_keeps_the_last_good_list(provider: Provider) -> None:
    clock = Clock()
    subscriptions = Subscriptions(fetch_url, clock)
    state = subscriptions.load(provider.url, "acme", 3600, "here")
    assert state.ok and [t.name for t in state.imported.targets] == ["one", "two"]  # type: ignore[union-attr]
    assert [s.entry for s in state.imported.skipped] == ["vmess:// link"]  # type: ignore[union-attr]
    provider.status = 503
    clock.now += 60
    assert subscriptions.load(provider.url, "acme", 3600, "here").ok  # not due yet: not fetched
    clock.now += 3600
    state = subscriptions.load(provider.url, "acme", 3600, "here")
    assert (state.ok, state.error, state.failures) == (False, "HTTP 503", 1)
    assert [t.name for t in state.imported.targets] == ["one", "two"]  # type: ignore[union-attr]
    assert "probing the last good list (2 targets)" in state.describe()
    assert TOKEN not in state.describe()
    provider.status, provider.body = 200, b"<html>captive portal</html>"
    clock.now += 3600
    state = subscriptions.load(provider.url, "acme", 3600, "here")
    assert not state.ok and "not a list of links" in (state.error or "")
    assert state.last_success == 1_000_000.0


def test_a_subscription_never_fetched_is_a_config_error(provider: Provider) -> None:
    provider.status = 404
    with pytest.raises(ConfigError) as error:
        Subscriptions(fetch_url, Clock()).load(provider.url, None, 3600, "vpnwatch.yml: targets[0]")
    assert str(error.value) == "vpnwatch.yml: targets[0]: subscription 127.0.0.1: HTTP 404"


def test_config_metrics_and_check_see_the_fetch_apart_from_the_proxies(
    provider: Provider, write: Callable[[str, str], Path]
) -> None:
    config_path = write(
        "vpnwatch.yml", f"targets:\n  - {{from: '{provider.url}', name: acme, refresh: 60}}\n"
    )
    config = load_config(config_path)
    assert [job.name for job in config.jobs] == ["one", "two"]
    assert config.refresh == 60 and [s.entry for s in config.skipped] == ["vmess:// link"]
    metrics = Metrics()
    metrics.configure(config.jobs)
    metrics.subscriptions(config.subscriptions)
    registry = registry_with(metrics)
    labels = {"subscription": "acme"}
    assert registry.get_sample_value("vpnwatch_subscription_fetch_success", labels) == 1.0
    assert registry.get_sample_value("vpnwatch_subscription_targets", labels) == 2.0
    assert registry.get_sample_value("vpnwatch_subscription_fetch_failures_total", labels) == 0.0


async def test_the_monitor_keeps_probing_the_last_good_list_when_a_refresh_fails(
    provider: Provider, write: Callable[[str, str], Path]
) -> None:

    probed: list[str] = []

    async def probe(target: Any, timeout: float) -> Result:
        probed.append(target.name)
        return Result(target.name, target.protocol, True, None, "data", (), 0.001)

    path = write(
        "vpnwatch.yml",
        "settings: {interval: 1, timeout: 0.5, listen: '127.0.0.1:0', jitter: 0}\n"
        f"targets:\n  - {{from: '{provider.url}', name: acme, refresh: 60}}\n",
    )
    monitor = Monitor(lambda: load_config(path), {"shadowsocks": probe, "trojan": probe})
    registry = registry_with(monitor.metrics)
    task = asyncio.create_task(monitor.run())
    try:
        await _until(lambda: {"one", "two"} <= set(probed))
        provider.status = 503
        SUBSCRIPTIONS._states[provider.url].last_attempt = 0.0  # due now
        assert await monitor.reload() is None
        labels = {"subscription": "acme"}
        assert registry.get_sample_value("vpnwatch_subscription_fetch_success", labels) == 0.0
        assert registry.get_sample_value("vpnwatch_subscription_fetch_failures_total", labels) == 1
        assert registry.get_sample_value("vpnwatch_subscription_targets", labels) == 2.0
        assert registry.get_sample_value("vpnwatch_config_last_reload_successful") == 1.0
        before = len(probed)
        await _until(lambda: {"one", "two"} <= set(probed[before:]))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_config_check_shows_a_failing_subscription_in_one_line(
    provider: Provider, write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:

    provider.status = 500
    path = write("vpnwatch.yml", f"targets:\n  - {{from: '{provider.url}', name: acme}}\n")
    assert cli.main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "targets[0] (acme): subscription acme: HTTP 500" in err and TOKEN not in err


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")
