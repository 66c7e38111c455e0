"""The stack with nothing simulated: vpnwatch probing the lab's real servers, scraped by a real
Prometheus running the repo's own scrape config (addresses rewritten) and rules, and every
dashboard panel asked of it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.promlib import (
    REPO,
    Prometheus,
    failing_panel_queries,
    free_port,
    load_dashboard,
    running_prometheus,
    wait_for,
)
from vpnwatch.lab.demo import demo_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SCRAPE_INTERVAL = 2
ALL = {name: ".*" for name in ("vantage", "protocol", "provider", "region", "site", "target")}


def scrape_config(vpnwatch: str) -> str:
    """The repo's prometheus.yml, pointed at this vpnwatch, with rules by absolute path."""
    config: dict[str, Any] = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = (
        f"{SCRAPE_INTERVAL}s"
    )
    config["rule_files"] = [str(REPO / "deploy/prometheus" / rule) for rule in config["rule_files"]]
    config.pop("alerting")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["vpnwatch"]["static_configs"][0]["targets"] = [vpnwatch]
    config["scrape_configs"] = [jobs["vpnwatch"]]
    return yaml.safe_dump(config)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    lab_dir = tmp_path_factory.mktemp("lab")
    with demo_lab(lab_dir, interval=2) as config:
        address = f"127.0.0.1:{free_port()}"
        monitor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vpnwatch.cli",
                "run",
                "--config",
                str(config),
                "--listen",
                address,
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            with running_prometheus(
                tmp_path_factory.mktemp("prometheus"), scrape_config(address)
            ) as prometheus:
                # Rates and quantiles need a few scrapes of probes that already ran.
                wait_for(
                    lambda: len(prometheus.query("vpnwatch_probes_total > 3", at=time.time())) >= 9,
                    "probes scraped",
                    timeout=90,
                )
                # The tunnel row's rates need two tunnel tests of a target scraped.
                wait_for(
                    lambda: prometheus.query("vpnwatch_tunnel_tests_total > 1", at=time.time()),
                    "tunnel tests scraped",
                    timeout=90,
                )
                time.sleep(SCRAPE_INTERVAL * 3)
                yield prometheus
        finally:
            monitor.terminate()
            monitor.wait(timeout=10)


def test_every_panel_query_runs_on_live_data(stack: Prometheus) -> None:
    dashboard = load_dashboard()
    errors = failing_panel_queries(
        stack, dashboard, ALL, end=time.time(), window=120, step=SCRAPE_INTERVAL, require_data=False
    )
    assert errors == []
    empty = failing_panel_queries(
        stack, dashboard, ALL, end=time.time(), window=120, step=SCRAPE_INTERVAL
    )
    # The lab fills every panel: failures, verdicts, latencies, stages, the monitor. Certificate
    # expiry only once a probe reports the certificate it verified (Result.certificate_not_after).
    reported = stack.query("vpnwatch_certificate_expiry_timestamp_seconds", at=time.time())
    expected = [] if reported else [e for e in empty if "panel 'Certificate expiry'" in e]
    assert empty == expected


def test_live_values_match_the_lab(stack: Prometheus) -> None:
    now = time.time()
    success = {
        s["metric"]["target"]: float(s["value"][1])
        for s in stack.query("vpnwatch_probe_success", at=now)
    }
    assert success["wg-lab"] == success["ovpn-udp-tls-auth"] == success["obfs4-lab"] == 1
    assert success["wg-unknown-key"] == 0
    verdict = stack.query('vpnwatch_verdict{target="wg-unknown-key"} == 1', at=now)
    assert [s["metric"]["vpnwatch_verdict"] for s in verdict] == ["failing"]
    assert all(s["metric"]["vantage"] == "central" for s in stack.query("up", at=now))


def test_the_rules_evaluate_without_error(stack: Prometheus) -> None:
    groups = stack.api("/api/v1/rules")["groups"]
    assert groups
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] == "err"
    ]
    assert unhealthy == []
    ratios = wait_for(
        lambda: stack.query("vantage_protocol:vpnwatch_probe_success:ratio_rate5m", at=time.time()),
        "the recording rules",
        timeout=30,
    )
    by_protocol = {s["metric"]["protocol"]: float(s["value"][1]) for s in ratios}
    assert by_protocol["obfs4"] == by_protocol["openvpn"] == 1
    assert 0 < by_protocol["wireguard"] < 1  # one of four WireGuard targets holds an unknown key


def test_a_report_from_live_data_names_the_failing_target_and_no_key(
    stack: Prometheus, tmp_path: Path
) -> None:
    """vpnwatch report on what the live monitor wrote (steps of one scrape: the history is short)."""
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "vpnwatch.cli", "report", "--prometheus", stack.url,
         "--from", "now-5m", "--to", "now", "--step", "2s", "--min-duration", "1s", "-o", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "wg-unknown-key" in text  # the one target the lab makes fail
    html = tmp_path / "report.html"
    subprocess.run(
        [sys.executable, "-m", "vpnwatch.cli", "report", "--prometheus", stack.url,
         "--from", "now-5m", "--to", "now", "--step", "2s", "-o", str(html)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    for document in (text, html.read_text()):
        assert "-----BEGIN" not in document
        assert not re.search(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=", document)  # a 32-byte key
