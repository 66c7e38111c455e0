"""Shadowsocks and Trojan are wired in where every protocol is: registry, target models,
messages in every language, and the series the dashboard's protocol variable lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vpnwatch.jobs import Job
from vpnwatch.messages import languages, read_catalogue
from vpnwatch.metrics import Metrics
from vpnwatch.probes.registry import PROBES
from vpnwatch.registry import PROTOCOLS, target_model
from vpnwatch.targets.shadowsocks import ShadowsocksTarget
from vpnwatch.targets.trojan import TrojanTarget

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "vpnwatch.json"
NEW = ("shadowsocks", "trojan")


@pytest.mark.parametrize("protocol", NEW)
def test_registered_with_a_probe_a_model_and_words(protocol: str) -> None:
    assert not PROTOCOLS[protocol].control
    assert callable(PROBES[protocol])
    model = target_model(protocol)
    assert model is not None and model.model_fields["protocol"].default == protocol
    for language in languages():
        assert read_catalogue(language)[f"report.probe.{protocol}"]


def test_the_dashboards_protocol_variable_lists_them() -> None:
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    [protocol] = [variable for variable in variables if variable["name"] == "protocol"]
    assert protocol["definition"].startswith("label_values(vpnwatch_target_info")
    jobs = [
        Job(ShadowsocksTarget(name="ss", host="192.0.2.1", port=8388, method="aes-128-gcm",
                              password="x"), 60, 10, "test"),  # type: ignore[arg-type]
        Job(TrojanTarget(name="tj", host="192.0.2.2", password="x"), 60, 10, "test"),  # type: ignore[arg-type]
    ]  # fmt: skip
    metrics = Metrics()
    metrics.configure(jobs)
    listed = {
        sample.labels["protocol"]
        for family in text_string_to_metric_families(metrics.exposition())
        if family.name == "vpnwatch_target_info"
        for sample in family.samples
    }
    assert listed == set(NEW)
