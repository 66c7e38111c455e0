"""Prometheus's config and rules, Alertmanager's config, and the site agent, on the real tools.

promtool and amtool check every file; promtool's unit tests must give every alert a firing and a
quiet case; mutating a rule must make those tests fail. Finally the whole pipeline runs: the
repo's central config and rules on a real Prometheus, a real agent configured exactly as a site's
Compose file writes it, remote-writing into the central one.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack import fleet
from tests.stack.promlib import (
    REPO,
    Prometheus,
    interpolate,
    promtool,
    read_env_file,
    run,
    running_prometheus,
    serving_metrics,
    wait_for,
)

PROMETHEUS = REPO / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
SITE = REPO / "deploy" / "site"


def alerting_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_central_config_and_its_rules_pass_promtool() -> None:
    done = promtool("check", "config", "--lint=all", "--lint-fatal", CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert RULES and f"{len(RULES)} rule files found" in done.stdout


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    done = promtool("test", "rules", *RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_can_be_acted_on() -> None:
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert len(rule["annotations"]["description"]) > 100, rule["alert"]


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    cases: dict[str, set[bool]] = {}
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for rule in alerting_rules():
        assert cases.get(rule["alert"]) == {True, False}, (
            f"{rule['alert']}: {cases.get(rule['alert'])}"
        )


def copy_rules_and_tests(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of rules/ and tests/ side by side, as the test files' relative paths expect."""
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    shutil.copytree(PROMETHEUS / "tests", tmp_path / "tests")
    return tmp_path / "rules" / RULES[0].name, tmp_path / "tests" / RULE_TESTS[0].name


def test_a_syntax_error_in_a_rule_fails_the_check(tmp_path: Path) -> None:
    rules, _ = copy_rules_and_tests(tmp_path)
    text = rules.read_text()
    rules.write_text(
        text.replace("rate(vpnwatch_probes_total[5m])", "rate(vpnwatch_probes_total[5m]", 1)
    )
    done = promtool("check", "rules", rules)
    assert done.returncode != 0
    assert "target:vpnwatch_probes:rate5m" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("original", "mutant"),
    [
        (
            "target:vpnwatch_handshake_duration_seconds:p95_rate15m > 2",
            "target:vpnwatch_handshake_duration_seconds:p95_rate15m > 5",
        ),
        (
            "max by (vantage) (vantage_protocol:vpnwatch_probe_success:ratio_rate5m) > 0.5",
            "max by (vantage) (vantage_protocol:vpnwatch_probe_success:ratio_rate5m) >= 0",
        ),
        ('up{job="vpnwatch"} == 0', 'up{job="vpnwatch"} == 1'),
    ],
    ids=["latency-threshold", "blocking-needs-a-working-protocol", "scrape-failing-inverted"],
)
def test_the_unit_tests_catch_a_changed_rule(tmp_path: Path, original: str, mutant: str) -> None:
    rules, tests = copy_rules_and_tests(tmp_path)
    assert original in rules.read_text()
    rules.write_text(rules.read_text().replace(original, mutant))
    assert promtool("check", "rules", rules).returncode == 0, "the mutant must still be valid"
    done = promtool("test", "rules", tests)
    assert done.returncode != 0, f"no unit test noticed {mutant!r}"


def test_alertmanager_config_passes_amtool() -> None:
    done = run(["amtool", "check-config", str(ALERTMANAGER)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_inhibitions_name_alerts_that_exist() -> None:
    names = {rule["alert"] for rule in alerting_rules()}
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            pattern = re.fullmatch(r'alertname(=~?)"?([^"]*)"?', matcher)
            assert pattern, matcher
            matched = {n for n in names if re.fullmatch(pattern[2], n)}
            assert matched and (pattern[1] == "=~" or matched == {pattern[2]}), matcher


# --- a probe-only site remote-writing into the central Prometheus ------------------------------


def site_agent_config(env: dict[str, str]) -> dict[str, Any]:
    """The agent config exactly as Compose writes it for a site from ``env``."""
    compose = yaml.safe_load(interpolate((SITE / "docker-compose.yml").read_text(), env))
    config: dict[str, Any] = yaml.safe_load(compose["configs"]["agent"]["content"])
    return config


def test_site_agent_config_passes_promtool(tmp_path: Path) -> None:
    config = site_agent_config(read_env_file(SITE / ".env.example"))
    password = tmp_path / "password"
    password.write_text("not-a-real-password")
    config["remote_write"][0]["basic_auth"]["password_file"] = str(password)
    (tmp_path / "agent.yml").write_text(yaml.safe_dump(config))
    done = promtool("check", "config", "--agent", tmp_path / "agent.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def fast(config: dict[str, Any]) -> dict[str, Any]:
    """Scrape and evaluate every second, so the pipeline test needs seconds, not minutes."""
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    return config


@pytest.fixture
def central_and_site(tmp_path: Path) -> Iterator[tuple[Prometheus, dict[str, str]]]:
    """The repo's central Prometheus scraping a stand-in vpnwatch at fra-home, and a site agent
    scraping one at tehran-isp, both stand-ins serving the simulated fleet as it advances."""
    start = time.time()
    env = read_env_file(SITE / ".env.example")

    def fleet_at(vantage: str) -> Any:
        return lambda: fleet.exposition(vantage, start, time.time(), probe_interval=1.0)

    with (
        serving_metrics(fleet_at("fra-home")) as central_vpnwatch,
        serving_metrics(fleet_at("tehran-isp")) as site_vpnwatch,
    ):
        central = fast(yaml.safe_load(CONFIG.read_text()))
        central["rule_files"] = [str(PROMETHEUS / pattern) for pattern in central["rule_files"]]
        central["alerting"] = {}  # no Alertmanager here: firing alerts show in ALERTS
        for job in central["scrape_configs"]:
            for group in job["static_configs"]:
                group["targets"] = [central_vpnwatch] if job["job_name"] == "vpnwatch" else []
        with running_prometheus(
            tmp_path / "central",
            yaml.safe_dump(central),
            extra_args=["--web.enable-remote-write-receiver"],
        ) as server:
            agent = fast(site_agent_config(env))
            del agent["global"]["evaluation_interval"]  # agents evaluate nothing
            agent["scrape_configs"][0]["static_configs"][0]["targets"] = [site_vpnwatch]
            agent["remote_write"][0]["url"] = f"{server.url}/api/v1/write"
            agent["remote_write"][0]["queue_config"] = {"batch_send_deadline": "1s"}
            password = tmp_path / "remote-write-password"
            password.write_text("not-a-real-password")
            agent["remote_write"][0]["basic_auth"]["password_file"] = str(password)
            with running_prometheus(tmp_path / "agent", yaml.safe_dump(agent), agent=True):
                yield server, env


@pytest.mark.slow
def test_a_site_and_the_central_monitor_meet_in_the_central_rules(
    central_and_site: tuple[Prometheus, dict[str, str]],
) -> None:
    server, env = central_and_site
    site = env["VANTAGE"]

    def ratios() -> dict[tuple[str, str], float]:
        result = server.query("vantage_protocol:vpnwatch_probe_success:ratio_rate5m", time.time())
        found = {
            (s["metric"]["vantage"], s["metric"]["protocol"]): float(s["value"][1]) for s in result
        }
        return found if {("central", "wireguard"), (site, "wireguard")} <= set(found) else {}

    ratio = wait_for(ratios, "success ratios of both vantages from the recording rules")
    # The central monitor (fra-home's story) reaches its WireGuard targets; the site, like
    # tehran-isp, has WireGuard blocked while OpenVPN works.
    assert ratio[("central", "wireguard")] == 1
    assert ratio[(site, "wireguard")] == 0
    assert ratio[(site, "openvpn")] == 1

    # The site's series carry its external labels, as the dashboard and alerts expect.
    (up,) = server.query(f'up{{job="vpnwatch", vantage="{site}"}}', time.time())
    assert up["metric"]["isp"] == env["ISP"] and up["value"][1] == "1"

    # And the central rules see the blocking: the alert is pending (it fires after 10 minutes).
    def pending() -> list[dict[str, Any]]:
        return server.query('ALERTS{alertname="VpnwatchProtocolBlocked"}', time.time())

    (alert,) = wait_for(pending, "VpnwatchProtocolBlocked to be pending")
    assert alert["metric"]["vantage"] == site and alert["metric"]["protocol"] == "wireguard"
