"""The Grafana dashboard: generated from code, structurally sound, every query real PromQL.

Grafana is not installable here, so the dashboard is checked the way Grafana would use it: it
parses as grafana-foundation-sdk's dashboard model, every panel asks the data source variable
(which provisioning and import both fill), each variable it uses exists, and each query and
annotation, with variables substituted as Grafana would, runs on a real Prometheus holding a
backfilled fleet and returns data.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

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
    provisioned_datasources,
    running_prometheus,
    substitute,
    template_variables,
    variable_query,
    variables_used,
)
from vpnwatch.report.selector import parse_selector

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


def datasource_users(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(who, data source) for every panel, query, variable and annotation that asks one."""
    for item in all_panels(dashboard):
        if item["type"] not in ("row", "text"):
            yield item["title"], item["datasource"]
            yield from ((f"{item['title']} {t['refId']}", t["datasource"]) for t in item["targets"])
    for name, variable in template_variables(dashboard).items():
        if variable["type"] == "query":
            yield f"variable {name}", variable["datasource"]
    for annotation in dashboard["annotations"]["list"]:
        if not annotation.get("builtIn"):
            yield f"annotation {annotation['name']}", annotation["datasource"]


def test_every_query_asks_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    """No uid of one Grafana's data source anywhere: the dashboard works in any Grafana."""
    users = list(datasource_users(dashboard))
    assert len(users) > 40
    for who, source in users:
        assert source == {"type": "prometheus", "uid": "${datasource}"}, who
    variable = template_variables(dashboard)["datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    assert "vpnwatch-prometheus" not in json.dumps(dashboard)


def test_import_asks_for_a_prometheus_and_selects_it(dashboard: dict[str, Any]) -> None:
    """Grafana's import replaces ${DS_PROMETHEUS} with the uid picked for the input."""
    (source,) = dashboard["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "prometheus")
    imported = json.loads(json.dumps(dashboard).replace("${" + source["name"] + "}", "any-uid"))
    assert template_variables(imported)["datasource"]["current"]["value"] == "any-uid"


def test_the_stack_provisions_a_default_prometheus_for_the_variable() -> None:
    """Provisioning ignores __inputs: the variable then selects the default data source."""
    defaults = [s for s in provisioned_datasources() if s.get("isDefault")]
    assert [s["type"] for s in defaults] == ["prometheus"]


def test_the_dashboard_parses_as_grafana_foundation_sdk_model(dashboard: dict[str, Any]) -> None:
    register_default_plugins()
    model = Dashboard.from_json(dashboard)
    again = json.loads(JSONEncoder(sort_keys=True).encode(model))
    # What the model kept is what we wrote: panel kinds, titles, queries and data sources.
    keep = ("type", "title", "datasource", "gridPos")
    assert [{k: p.get(k) for k in keep} for p in again["panels"]] == [
        {k: p.get(k) for k in keep} for p in dashboard["panels"]
    ]
    assert [t["expr"] for p in again["panels"] for t in p.get("targets") or []] == [
        t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])
    ]
    assert [v["name"] for v in again["templating"]["list"]] == list(template_variables(dashboard))
    assert [a["name"] for a in again["annotations"]["list"]] == [
        a["name"] for a in dashboard["annotations"]["list"]
    ]


def test_target_state_links_to_the_target_and_the_view_to_its_report(
    dashboard: dict[str, Any],
) -> None:
    panels = {p["title"]: p for p in all_panels(dashboard)}
    (link,) = panels["Target state"]["fieldConfig"]["defaults"]["links"]
    assert "var-target=${__field.labels.target}" in link["url"]
    assert "${__url_time_range}" in link["url"]
    content = panels["Report for this view"]["options"]["content"]
    assert "vpnwatch report" in content and "--from ${__from:date:iso}" in content
    assert variables_used(content) - {"__from", "__to"} <= set(template_variables(dashboard))
    # With Grafana's values put in, "All" included, the report's own parser accepts the command.
    for values in (ALL, ONE):
        (match,) = re.findall(r"--match '([^']*)'", substitute(content, values))
        names = {matcher.name for matcher in parse_selector(match).matchers}
        assert names == {"vantage", "protocol", "site", "target"}


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
        if item["type"] not in ("row", "text"):
            assert item["targets"], f"{item['title']} has no query"
            assert all(t["expr"].strip() for t in item["targets"]), item["title"]


def test_every_variable_used_is_defined(dashboard: dict[str, Any]) -> None:
    defined = set(template_variables(dashboard)) | set(GRAFANA_BUILTINS)
    texts = [q.expr for q in panel_queries(dashboard)]
    texts += [v["definition"] for v in template_variables(dashboard).values() if "definition" in v]
    texts += [json.dumps(s) for _, s in datasource_users(dashboard)]
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
        "vpnwatch_probe_duration_seconds_bucket", "vpnwatch_probe_stage_duration_seconds_bucket",
        "vpnwatch_certificate_expiry_timestamp_seconds",
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
        if variable["type"] == "datasource":
            continue
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
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
