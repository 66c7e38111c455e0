"""Notifications end to end: vpnwatch → Prometheus with the repo's rules → Alertmanager with the
repo's configuration, its example receivers uncommented → a local receiver that records what it
is sent. The lab's WireGuard server is taken down and brought back; the webhook gets the firing
alert and then the resolved one, and the severity routing sends the warning to Slack and not to
on-call Telegram.

The rules' expressions and routes are the repo's own; only durations shrink (``for:`` and the
grouping intervals, from minutes to a second) and the receivers' addresses point at loopback.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.promlib import REPO, free_port, running_prometheus, wait_for
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer

ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RULES = REPO / "deploy" / "prometheus" / "rules" / "vpnwatch.rules.yml"
TARGET = "wg-lab"


def uncommented(text: str) -> str:
    """The file with its example receivers and routes switched on: a line starting with a
    single ``#`` is commented-out configuration, ``##`` is prose."""
    lines = [
        " " + line[1:] if line.startswith("# ") else "" if line == "#" else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def test_the_commented_receivers_are_valid_configuration(tmp_path: Path) -> None:
    for name, text in (("as-shipped", ALERTMANAGER.read_text()),
                       ("uncommented", uncommented(ALERTMANAGER.read_text()))):  # fmt: skip
        path = tmp_path / f"{name}.yml"
        path.write_text(text)
        check = subprocess.run(
            ["amtool", "check-config", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    receivers = {
        r["name"] for r in yaml.safe_load(uncommented(ALERTMANAGER.read_text()))["receivers"]
    }
    assert {"webhook", "slack-warnings", "telegram-oncall", "karachi-team"} <= receivers


@dataclass
class Recorder:
    """What the receivers were sent: (path, JSON body) in arrival order."""

    url: str
    received: list[tuple[str, Any]] = field(default_factory=list)

    def webhook(self, status: str) -> list[dict[str, Any]]:
        return [
            body for path, body in self.received
            if path == "/webhook" and body["status"] == status
            and any(a["labels"].get("target") == TARGET for a in body["alerts"])
        ]  # fmt: skip


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    recorder = Recorder("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
            recorder.received.append((self.path.split("?")[0], parsed))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true, "result": {}}')

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def alertmanager_config(recorder: Recorder) -> str:
    config = yaml.safe_load(uncommented(ALERTMANAGER.read_text()))
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"{recorder.url}/webhook"
        for slack in receiver.get("slack_configs", []):
            slack["api_url"] = f"{recorder.url}/slack"
        for telegram in receiver.get("telegram_configs", []):
            telegram["api_url"] = f"{recorder.url}/telegram"
        for email in receiver.get("email_configs", []):
            email["smarthost"] = f"127.0.0.1:{free_port()}"  # nobody listens: never delivered
    return yaml.safe_dump(config)


@contextlib.contextmanager
def running_alertmanager(workdir: Path, config: str) -> Iterator[str]:
    (workdir / "alertmanager.yml").write_text(config)
    address = f"127.0.0.1:{free_port()}"
    with (workdir / "alertmanager.log").open("wb") as log:
        server = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={workdir / 'alertmanager.yml'}",
             f"--storage.path={workdir / 'data'}", f"--web.listen-address={address}",
             "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: _ready(f"http://{address}"), "alertmanager ready", timeout=60)
        yield address
    finally:
        server.terminate()
        server.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def prometheus_config(workdir: Path, vpnwatch: str, alertmanager: str) -> str:
    """The repo's prometheus.yml and rules, pointed at these servers, waiting seconds not minutes."""
    rules = workdir / "vpnwatch.rules.yml"
    rules.write_text(re.sub(r"(?m)^(\s+for:) \S+$", r"\1 1s", RULES.read_text()))
    config: dict[str, Any] = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vpnwatch"]
    job["static_configs"][0]["targets"] = [vpnwatch]
    config["scrape_configs"] = [job]
    return yaml.safe_dump(config)


@pytest.mark.lab
@pytest.mark.slow
def test_a_target_down_and_back_is_notified_firing_then_resolved(tmp_path: Path) -> None:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        client = KeyPair.generate()
        server.add_peer(client.public)
        (tmp_path / "wg-lab.conf").write_text(server.client_config(client))
        config = tmp_path / "vpnwatch.yml"
        config.write_text(
            "settings: {interval: 1, timeout: 0.5}\n"
            f"targets:\n  - {{from: wg-lab.conf, name: {TARGET}, labels: {{site: lab-site}}}}\n"
        )
        notified_of_outage(server, config, tmp_path)


def notified_of_outage(server: WireGuardServer, config: Path, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    monitor = subprocess.Popen(
        [sys.executable, "-m", "vpnwatch.cli", "run", "--config", str(config), "--listen", address],
        stderr=subprocess.DEVNULL,
    )
    try:
        with (
            recording() as recorder,
            running_alertmanager(tmp_path, alertmanager_config(recorder)) as alertmanager,
            running_prometheus(
                tmp_path / "prometheus", prometheus_config(tmp_path, address, alertmanager)
            ) as prometheus,
        ):
            wait_for(
                lambda: prometheus.query(
                    f'vpnwatch_verdict{{target="{TARGET}",vpnwatch_verdict="ok"}} == 1', time.time()
                ),
                "the target seen up",
            )
            server.stop()  # taken down: handshakes go unanswered from now on
            (firing, *_) = wait_for(lambda: recorder.webhook("firing"), "the firing alert", 90)
            (alert,) = [a for a in firing["alerts"] if a["labels"]["target"] == TARGET]
            assert alert["labels"]["alertname"] == "VpnwatchTargetDown"
            assert alert["labels"]["severity"] == "warning"
            assert alert["labels"]["site"] == "lab-site"
            assert f"target {TARGET} is down" in alert["annotations"]["summary"]

            server.start()  # back up, same keys and peers
            (resolved, *_) = wait_for(
                lambda: recorder.webhook("resolved"), "the resolved notice", 90
            )
            assert resolved["alerts"][0]["labels"]["target"] == TARGET
            assert resolved["alerts"][0]["endsAt"] > alert["startsAt"]

            paths = [path for path, _ in recorder.received]
            assert "/slack" in paths  # a warning goes to the warnings channel
            assert not any(path.startswith("/telegram") or "/bot" in path for path in paths)
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
