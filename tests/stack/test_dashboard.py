"""The Grafana dashboard: generated from code, structurally sound, every query real PromQL.

Grafana is not installable here, so the dashboard is checked the way Grafana would use it: each
panel names a data source that provisioning defines, each variable it uses exists, and each
query, with variables substituted as Grafana would, runs on a real Prometheus holding a
backfilled fleet and returns data.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import fleet
from tests.stack.promlib import (
    DASHBOARD,
    GRAFANA_BUILTINS,
    REPO,
    Prometheus,
    all_panels,
    backfill,
    failing_panel_queries,
    load_dashboard,
    panel_queries,
    provisioned_datasource_uids,
    running_prometheus,
    substitute,
    template_variables,
    variable_query,
    variables_used,
)

#: The backfilled history: two hours ending at a fixed instant in the past, so the blocks never
#: overlap the head block of the Prometheus that serves them.
END = 1_717_243_200.0  # 2024-06-01T12:00:00Z
START = END - 2 * 3600
#: "All" for every variable, as a fresh dashboard opens.
ALL = {name: ".*" for name in ("vantage", "protocol", "provider", "region", "site", "target")}
#: One concrete choice, with every kind of data present: the flaky OpenVPN target at fra-home
#: has successes, failures and latencies.
ONE = {**ALL, "vantage": "fra-home", "protocol": "openvpn", "target": "ovpn-fra",
       "provider": "acme", "region": "eu", "site": "fra"}  # fmt: skip


def test_committed_json_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate", REPO / "dashboards" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert DASHBOARD.read_text(encoding="utf-8") == generate.render(), (
        "dashboards/vpnwatch.json is stale: run python dashboards/generate.py"
    )


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def test_every_panel_and_variable_uses_a_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    uids = provisioned_datasource_uids()
    assert uids, "no data source is provisioned"
    users = [p for p in all_panels(dashboard) if p["type"] != "row"]
    users += list(template_variables(dashboard).values())
    for user in users:
        sources = [user["datasource"], *(t["datasource"] for t in user.get("targets", []))]
        for source in sources:
            assert source["uid"] in uids, f"{user.get('title') or user['name']}: {source}"


def test_panels_have_queries_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    panels = list(all_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    occupied: dict[tuple[int, int], str] = {}
    for item in panels:
        grid = item["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, item["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in occupied, f"{item['title']} overlaps {occupied[(x, y)]}"
                occupied[(x, y)] = item["title"]
        if item["type"] != "row":
            assert item["targets"], f"{item['title']} has no query"
            assert all(t["expr"].strip() for t in item["targets"]), item["title"]


def test_every_variable_used_is_defined(dashboard: dict[str, Any]) -> None:
    defined = set(template_variables(dashboard)) | set(GRAFANA_BUILTINS)
    texts = [q.expr for q in panel_queries(dashboard)]
    texts += [v["definition"] for v in template_variables(dashboard).values()]
    used = set().union(*(variables_used(text) for text in texts))
    assert used <= defined, f"undefined: {sorted(used - defined)}"
    # And every variable defined filters something: an unused one is a dead dropdown.
    assert set(template_variables(dashboard)) <= used


def test_the_dashboard_offers_the_filters_operators_need(dashboard: dict[str, Any]) -> None:
    assert {"vantage", "protocol", "target", "provider", "region", "site"} <= set(
        template_variables(dashboard)
    )


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    backfill(fleet.openmetrics_history(START, END), workdir / "tsdb")
    with running_prometheus(workdir) as server:
        yield server


def test_backfill_covers_every_metric_of_the_contract(prometheus: Prometheus) -> None:
    names = set(prometheus.api("/api/v1/label/__name__/values", start=START, end=END))
    contract = {
        "vpnwatch_probes_total", "vpnwatch_probe_failures_total", "vpnwatch_probe_success",
        "vpnwatch_handshake_duration_seconds_bucket", "vpnwatch_handshake_duration_seconds_sum",
        "vpnwatch_handshake_duration_seconds_count", "vpnwatch_last_success_timestamp_seconds",
        "vpnwatch_target_info", "vpnwatch_verdict", "vpnwatch_probe_errors_total",
        "vpnwatch_config_last_reload_successful", "vpnwatch_build_info",
        "vpnwatch_config_last_reload_success_timestamp_seconds", "process_cpu_seconds_total",
        "process_resident_memory_bytes", "up",
    }  # fmt: skip
    assert contract <= names, sorted(contract - names)


@pytest.mark.parametrize("values", [ALL, ONE], ids=["all", "one-target"])
def test_every_panel_query_returns_data(
    prometheus: Prometheus, dashboard: dict[str, Any], values: dict[str, str]
) -> None:
    assert failing_panel_queries(prometheus, dashboard, values, end=END) == []


def test_every_variable_lists_values(prometheus: Prometheus, dashboard: dict[str, Any]) -> None:
    for name, variable in template_variables(dashboard).items():
        expr, label = variable_query(substitute(variable["definition"], ALL))
        # Grafana lists the values of series that have the label; controls have no provider.
        found = {s["metric"][label] for s in prometheus.query(expr, at=END) if label in s["metric"]}
        assert found, f"variable {name}: {expr} lists nothing"


def test_panel_values_tell_the_fleet_story(
    prometheus: Prometheus, dashboard: dict[str, Any]
) -> None:
    """Not just data: the availability panel sees WireGuard blocked from tehran-isp only."""
    (by_vantage,) = [
        q for q in panel_queries(dashboard) if q.panel == "Availability by vantage and protocol"
    ]
    result = prometheus.query(substitute(by_vantage.expr, ALL), at=END)
    ratio = {
        (s["metric"]["vantage"], s["metric"]["protocol"]): float(s["value"][1]) for s in result
    }
    assert ratio[("tehran-isp", "wireguard")] == 0
    assert ratio[("fra-home", "wireguard")] == 1
    assert ratio[("fra-home", "openvpn")] == pytest.approx(0.75, abs=0.05)


def test_a_broken_panel_query_is_reported(
    prometheus: Prometheus, dashboard: dict[str, Any]
) -> None:
    broken = copy.deepcopy(dashboard)
    victim = next(p for p in all_panels(broken) if p["title"] == "Failures by class")
    victim["targets"][0]["expr"] = victim["targets"][0]["expr"].replace("sum by", "sum by (", 1)
    typo = next(p for p in all_panels(broken) if p["title"] == "Probes per second by protocol")
    typo["targets"][0]["expr"] = typo["targets"][0]["expr"].replace("probes_total", "probe_total")
    unknown = next(p for p in all_panels(broken) if p["title"] == "CPU")
    unknown["targets"][0]["expr"] += " * $scale"

    problems = failing_panel_queries(prometheus, broken, ALL, end=END)

    assert len(problems) == 3, problems
    assert "panel 'Failures by class' query A: bad_data" in problems[0]
    assert "panel 'Probes per second by protocol' query A: no data" in problems[1]
    assert "panel 'CPU' query A: undefined variable $scale" in problems[2]


def test_json_is_valid_for_grafana_provisioning(dashboard: dict[str, Any]) -> None:
    # Provisioned dashboards cannot fill ${DS_...} inputs; a fixed uid is the only way.
    text = json.dumps(dashboard)
    assert "${DS_" not in text and "__inputs" not in dashboard
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
