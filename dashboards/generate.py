"""Writes dashboards/vpnwatch.json, the Grafana dashboard of the vpnwatch stack.

The dashboard is code so that its PromQL is written once: every panel filters by the same
template variables through one selector, and the success ratio is built by one function. The
JSON is committed (Grafana provisions it from the repo) and tests/stack checks that it is what
this script writes, that its structure is sound, and that every query runs on a real Prometheus.

Run ``python dashboards/generate.py`` after changing this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Json = dict[str, Any]

#: Every panel, variable and annotation asks the data source chosen in the ``datasource``
#: variable, so the dashboard works in any Grafana: imported, Grafana asks for a Prometheus
#: (``__inputs``) and preselects it; provisioned by the compose stack, the variable falls back to
#: the default data source, deploy/grafana/provisioning/datasources/prometheus.yml.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE: Json = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
#: The import input Grafana fills with the data source picked in its import dialog.
DATASOURCE_INPUT = "DS_PROMETHEUS"
OUTPUT = Path(__file__).with_name("vpnwatch.json")

#: Template variables in the order they narrow each other: vantage first, target last. Each is
#: (name, label shown in Grafana). provider, region and site are the labels users commonly set.
VARIABLES = (
    ("vantage", "Vantage"),
    ("protocol", "Protocol"),
    ("provider", "Provider"),
    ("region", "Region"),
    ("site", "Site"),
    ("target", "Target"),
)
#: Matches a probe series against every variable. "All" is ".*", which also matches a series
#: without that label, so targets that set no provider are not hidden by the provider filter.
SELECTOR = ", ".join(f'{name}=~"${name}"' for name, _ in VARIABLES)
#: The monitor's own series carry no target labels, only where it runs.
MONITOR_SELECTOR = 'job="vpnwatch", vantage=~"$vantage"'


def summed_rate(
    counter: str, by: str, window: str = "$__rate_interval", selector: str = SELECTOR
) -> str:
    """The per-second rate of ``counter``'s series matching ``selector``, summed by ``by``."""
    return f"sum by ({by}) (rate({counter}{{{selector}}}[{window}]))"


def success_ratio(by: str, window: str) -> str:
    """Share of probes that succeeded, from the counters (not from sampling the last result).

    A group with no failure series at all has a ratio of 1, hence ``or probes * 0``.
    """
    probes = summed_rate("vpnwatch_probes_total", by, window)
    failures = summed_rate("vpnwatch_probe_failures_total", by, window)
    return f"1 - ({failures} or {probes} * 0) / {probes}"


def handshake_quantile(quantile: float, by: str) -> str:
    return quantile_of("vpnwatch_handshake_duration_seconds", quantile, by)


def quantile_of(histogram: str, quantile: float, by: str, selector: str = SELECTOR) -> str:
    buckets = summed_rate(f"{histogram}_bucket", f"{by}, le", selector=selector)
    return f"histogram_quantile({quantile}, {buckets})"


def query(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> Json:
    return {
        "datasource": DATASOURCE,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
    }


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    grid: tuple[int, int, int, int],
    *,
    unit: str = "short",
    field: Json | None = None,
    options: Json | None = None,
    links: list[Json] | None = None,
) -> Json:
    """A panel at grid (x, y, width, height); ids are assigned when the dashboard is built.

    ``links`` become data links: each value of the panel links to what explains it.
    """
    x, y, w, h = grid
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "links": links or [], **(field or {})},
            "overrides": [],
        },
        "options": options or {},
    }


def row(title: str, y: int) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
    }


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {
        "thresholds": {
            "mode": "absolute",
            "steps": [{"value": value, "color": color} for value, color in steps],
        }
    }


def value_names(names: dict[int, tuple[str, str]]) -> Json:
    """Grafana value mappings: number -> (text, colour)."""
    return {
        "mappings": [
            {
                "type": "value",
                "options": {
                    str(value): {"text": text, "color": color, "index": index}
                    for index, (value, (text, color)) in enumerate(names.items())
                },
            }
        ]
    }


RATIO_FIELD: Json = {"min": 0, "max": 1, "decimals": 2} | thresholds(
    (None, "red"), (0.9, "orange"), (0.99, "green")
)
LEGEND_TABLE: Json = {
    "legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "min"]},
    "tooltip": {"mode": "multi", "sort": "desc"},
}
STATE_NAMES = {0: ("ok", "green"), 1: ("failing", "red"), 2: ("offline", "purple")}
#: From a target's row to this dashboard narrowed to it, over the same time range.
TARGET_LINK: Json = {
    "title": "Only ${__field.labels.target} from ${__field.labels.vantage}",
    "url": "/d/vpnwatch/vpnwatch?var-target=${__field.labels.target}"
    "&var-vantage=${__field.labels.vantage}&${datasource:queryparam}&${__url_time_range}",
}
#: The ``vpnwatch report`` command for what the dashboard shows: its time range and filters.
#: ``target!=""`` holds for every series; it keeps the selector valid for the report (which refuses
#: one that would match everything) when every filter is "All".
REPORT_COMMAND = (
    "vpnwatch report --prometheus http://PROMETHEUS:9090 "
    "--from ${__from:date:iso} --to ${__to:date:iso} "
    '--match \'{vantage=~"${vantage:regex}", protocol=~"${protocol:regex}", '
    'site=~"${site:regex}", target=~"${target:regex}", target!=""}\' -o report.html'
)


def overview_panels() -> list[Json]:
    return [
        row("Now", 0),
        panel(
            "stat",
            "Targets by verdict",
            "ok: the last probe succeeded. failing: it failed while the control probes of the "
            "same vantage succeed (the endpoint or protocol is affected). offline: the controls "
            "fail too (the vantage's own network is down).",
            [
                query(
                    f"sum by (vpnwatch_verdict) (vpnwatch_verdict{{{SELECTOR}}})",
                    "{{vpnwatch_verdict}}",
                    instant=True,
                )
            ],
            (0, 1, 8, 4),
            options={"colorMode": "value", "graphMode": "none", "textMode": "value_and_name"},
        ),
        panel(
            "stat",
            "Availability over the time range",
            "Share of all probes of the selected targets that succeeded, over the whole range.",
            [query(success_ratio("", "$__range"), "availability", instant=True)],
            (8, 1, 8, 4),
            unit="percentunit",
            field=RATIO_FIELD,
        ),
        panel(
            "stat",
            "Probes per second",
            "Probes completed per second across the selected targets.",
            [
                query(
                    f"sum(rate(vpnwatch_probes_total{{{SELECTOR}}}[$__rate_interval]))",
                    "probes/s",
                )
            ],
            (16, 1, 8, 4),
            unit="reqps",
        ),
        panel(
            "timeseries",
            "Availability per protocol",
            "Share of probes that succeeded, per protocol. A protocol dropping on every vantage "
            "at once is an outage at the providers; on one vantage only, look for blocking there.",
            [query(success_ratio("protocol", "$__rate_interval"), "{{protocol}}")],
            (0, 5, 12, 8),
            unit="percentunit",
            field=RATIO_FIELD,
        ),
        panel(
            "timeseries",
            "Handshake latency p50 / p95 per protocol",
            "Time to a cryptographically verified handshake, successful probes only.",
            [
                query(handshake_quantile(0.5, "protocol"), "{{protocol}} p50", ref="A"),
                query(handshake_quantile(0.95, "protocol"), "{{protocol}} p95", ref="B"),
            ],
            (12, 5, 12, 8),
            unit="s",
        ),
        panel(
            "state-timeline",
            "Target state",
            "Each target's verdict over time, per vantage.",
            [
                query(
                    f"max by (vantage, target, protocol) "
                    f'(vpnwatch_verdict{{vpnwatch_verdict="failing", {SELECTOR}}}) '
                    f"+ 2 * max by (vantage, target, protocol) "
                    f'(vpnwatch_verdict{{vpnwatch_verdict="offline", {SELECTOR}}})',
                    "{{vantage}} {{target}}",
                )
            ],
            (0, 13, 24, 10),
            links=[TARGET_LINK],
            field={"color": {"mode": "thresholds"}}
            | value_names(STATE_NAMES)
            | thresholds((None, "green"), (1, "red"), (2, "purple")),
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        panel(
            "timeseries",
            "Failures by class",
            "Failed probes per second by failure class. timeout: silent drop; refused/reset: a "
            "firewall or DPI answering; auth: keys no longer match; dns, tls_cert, tls, eof, "
            "unreachable, protocol: as named.",
            [query(summed_rate("vpnwatch_probe_failures_total", "failure"), "{{failure}}")],
            (0, 23, 12, 8),
            unit="reqps",
            field={"custom": {"drawStyle": "bars", "stacking": {"mode": "normal"}}},
        ),
        panel(
            "timeseries",
            "Failures by stage",
            "Where handshakes are cut: the stage each failed probe reached, per protocol.",
            [
                query(
                    summed_rate("vpnwatch_probe_failures_total", "protocol, stage"),
                    "{{protocol}} {{stage}}",
                )
            ],
            (12, 23, 12, 8),
            unit="reqps",
            field={"custom": {"drawStyle": "bars", "stacking": {"mode": "normal"}}},
        ),
        panel(
            "bargauge",
            "Time since last success",
            "How long ago each target last completed a verified handshake; infinite for a "
            "target that has not succeeded once since its monitor started.",
            [
                query(
                    f"time() - max by (vantage, target, protocol) "
                    f"(vpnwatch_last_success_timestamp_seconds{{{SELECTOR}}}) "
                    f"or max by (vantage, target, protocol) "
                    f"(vpnwatch_target_info{{{SELECTOR}}}) * +Inf",
                    "{{vantage}} {{target}}",
                    instant=True,
                )
            ],
            (0, 31, 12, 8),
            unit="s",
            field=thresholds((None, "green"), (300, "orange"), (900, "red")),
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        panel(
            "timeseries",
            "Probes per second by protocol",
            "Probes completed per second. A flat line at zero with targets configured means the "
            "scheduler is stuck.",
            [query(summed_rate("vpnwatch_probes_total", "protocol"), "{{protocol}}")],
            (12, 31, 12, 8),
            unit="reqps",
        ),
    ]


def vantage_panels() -> list[Json]:
    return [
        row("Vantages side by side", 39),
        panel(
            "bargauge",
            "Availability by vantage and protocol",
            "The same protocols seen from each vantage over the time range: a protocol that is "
            "fine elsewhere but down from one vantage is blocked or broken on that network.",
            [
                query(
                    success_ratio("vantage, protocol", "$__range"),
                    "{{vantage}} {{protocol}}",
                    instant=True,
                )
            ],
            (0, 40, 12, 9),
            unit="percentunit",
            field=RATIO_FIELD,
            options={"displayMode": "gradient", "orientation": "horizontal"},
        ),
        panel(
            "timeseries",
            "Handshake p95 by vantage and protocol",
            "Latency to the same endpoints from each vantage; a jump on one vantage only is that "
            "network throttling or rerouting.",
            [query(handshake_quantile(0.95, "vantage, protocol"), "{{vantage}} {{protocol}}")],
            (12, 40, 12, 9),
            unit="s",
            options=LEGEND_TABLE,
        ),
    ]


def monitor_panels() -> list[Json]:
    return [
        row("The monitor itself", 49),
        panel(
            "stat",
            "Scrapes up",
            "Whether Prometheus reaches each vpnwatch (one per vantage or shard).",
            [query(f"up{{{MONITOR_SELECTOR}}}", "{{vantage}} {{instance}}", instant=True)],
            (0, 50, 6, 5),
            field=value_names({0: ("down", "red"), 1: ("up", "green")}),
        ),
        panel(
            "stat",
            "Last config reload",
            "0 means the last reload failed and the previous configuration is still running.",
            [
                query(
                    f"vpnwatch_config_last_reload_successful{{{MONITOR_SELECTOR}}}",
                    "{{vantage}} {{instance}}",
                    instant=True,
                )
            ],
            (6, 50, 6, 5),
            field=value_names({0: ("failed", "red"), 1: ("ok", "green")}),
        ),
        panel(
            "timeseries",
            "Internal errors per second",
            "Probes that raised inside vpnwatch: bugs, not network failures. Should be zero.",
            [
                query(
                    summed_rate(
                        "vpnwatch_probe_errors_total",
                        "vantage, instance",
                        selector=MONITOR_SELECTOR,
                    ),
                    "{{vantage}} {{instance}}",
                )
            ],
            (12, 50, 12, 5),
            unit="reqps",
        ),
        panel(
            "timeseries",
            "Resident memory",
            "Memory of each vpnwatch process.",
            [
                query(
                    f"process_resident_memory_bytes{{{MONITOR_SELECTOR}}}",
                    "{{vantage}} {{instance}}",
                )
            ],
            (0, 55, 8, 6),
            unit="bytes",
        ),
        panel(
            "timeseries",
            "CPU",
            "CPU time per second of each vpnwatch process (1 = one core).",
            [
                query(
                    f"rate(process_cpu_seconds_total{{{MONITOR_SELECTOR}}}[$__rate_interval])",
                    "{{vantage}} {{instance}}",
                )
            ],
            (8, 55, 8, 6),
            unit="percentunit",
        ),
        panel(
            "table",
            "Versions",
            "The vpnwatch version running at each vantage.",
            [
                query(
                    f"vpnwatch_build_info{{{MONITOR_SELECTOR}}}",
                    "{{vantage}} {{version}}",
                    instant=True,
                )
            ],
            (16, 55, 8, 6),
            options={"showHeader": True},
        ),
        panel(
            "timeseries",
            "Schedule lateness p99",
            "How late probes start against their schedule. Lateness that grows means this "
            "monitor has more targets than its concurrency cap or its CPU can serve: raise "
            "settings.concurrency, or shard the targets (vpnwatch run --shard K/N).",
            [
                query(
                    quantile_of(
                        "vpnwatch_schedule_lateness_seconds",
                        0.99,
                        "vantage, instance",
                        selector=MONITOR_SELECTOR,
                    ),
                    "{{vantage}} {{instance}}",
                )
            ],
            (0, 61, 12, 6),
            unit="s",
        ),
    ]


def detail_panels() -> list[Json]:
    return [
        row("Probe stages, certificates and the report", 67),
        panel(
            "timeseries",
            "Stage durations p95",
            "How long each stage of a handshake takes, per protocol: a stage that slows while "
            "the others do not points at what is throttled (the TLS handshake, a server's reply).",
            [
                query(
                    quantile_of("vpnwatch_probe_stage_duration_seconds", 0.95, "protocol, stage"),
                    "{{protocol}} {{stage}}",
                )
            ],
            (0, 68, 12, 8),
            unit="s",
            options=LEGEND_TABLE,
        ),
        panel(
            "timeseries",
            "Probe duration p95, failed probes included",
            "How long probes take whatever their outcome: timeouts show up as the probe timeout.",
            [
                query(
                    quantile_of("vpnwatch_probe_duration_seconds", 0.95, "protocol"), "{{protocol}}"
                )
            ],
            (12, 68, 12, 8),
            unit="s",
        ),
        panel(
            "bargauge",
            "Certificate expiry",
            "Time left until the server certificate each target presents expires (OpenVPN, TLS). "
            "The VpnwatchCertificateExpiring alert fires 14 days before.",
            [
                query(
                    "min by (vantage, target) "
                    f"(vpnwatch_certificate_expiry_timestamp_seconds{{{SELECTOR}}}) - time()",
                    "{{vantage}} {{target}}",
                    instant=True,
                )
            ],
            (0, 76, 12, 8),
            unit="s",
            field=thresholds((None, "red"), (14 * 86400, "orange"), (30 * 86400, "green")),
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        {
            "type": "text",
            "title": "Report for this view",
            "description": "The disruption report for the time range and filters shown here.",
            "gridPos": {"x": 12, "y": 76, "w": 12, "h": 8},
            "options": {
                "mode": "markdown",
                "content": "A report of the incidents in this time range, for regulators and the "
                "press (HTML, Markdown, CSV or JSON by the file's extension):\n\n"
                f"```\n{REPORT_COMMAND}\n```\n\nSee docs/report.md.",
            },
        },
    ]


def tunnel_panels() -> list[Json]:
    """Through the tunnel: what the tunnel tests measure, after a handshake that worked."""
    trains = f'{SELECTOR}, phase="train"'
    sent = summed_rate("vpnwatch_tunnel_echoes_sent_total", "vantage, target", "1h", trains)
    received = summed_rate("vpnwatch_tunnel_echoes_received_total", "vantage, target", "1h", trains)
    return [
        row("Through the tunnel", 84),
        panel(
            "timeseries",
            "Echo loss through the tunnel",
            "Share of the tunnel tests' echoes that never came back, per target, over an hour "
            "(a ratio of the sent and received counters). A censor that lets handshakes through "
            "and drops the traffic shows here while handshakes still succeed.",
            [query(f"1 - {received} / {sent}", "{{vantage}} {{target}}")],
            (0, 85, 12, 8),
            unit="percentunit",
            options=LEGEND_TABLE,
        ),
        panel(
            "timeseries",
            "Round trip through the tunnel, p50",
            "Median round trip of the echoes carried through each tunnel, per target.",
            [
                query(
                    quantile_of("vpnwatch_tunnel_rtt_seconds", 0.5, "vantage, target"),
                    "{{vantage}} {{target}}",
                )
            ],
            (12, 85, 12, 8),
            unit="s",
            options=LEGEND_TABLE,
        ),
        panel(
            "timeseries",
            "Goodput of the burst",
            "Bytes per second the last tunnel test's burst came back at: throttling shows here.",
            [
                query(
                    f"vpnwatch_tunnel_goodput_bytes_per_second{{{SELECTOR}}}",
                    "{{vantage}} {{target}}",
                )
            ],
            (0, 93, 12, 8),
            unit="Bps",
            options=LEGEND_TABLE,
        ),
        panel(
            "table",
            "Tunnels: degraded, and why",
            "Each target's last tunnel test: 1 for each reason it found the tunnel degraded "
            "(loss, rtt, jitter, goodput, cut), and how long its session carried traffic.",
            [
                query(
                    f"vpnwatch_tunnel_degraded{{{SELECTOR}}}",
                    "{{vantage}} {{target}} {{reason}}",
                    instant=True,
                ),
                query(
                    f"vpnwatch_tunnel_held_seconds{{{SELECTOR}}}",
                    "{{vantage}} {{target}}",
                    instant=True,
                    ref="B",
                ),
            ],
            (12, 93, 12, 8),
            unit="s",
        ),
    ]


def variable(name: str, label: str, narrowed_by: list[str]) -> Json:
    """A multi-value query variable listing the label's values among the configured targets."""
    matchers = ", ".join(f'{other}=~"${other}"' for other in narrowed_by)
    definition = f"label_values(vpnwatch_target_info{{{matchers}}}, {name})"
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def build() -> Json:
    panels = [
        *overview_panels(),
        *vantage_panels(),
        *monitor_panels(),
        *detail_panels(),
        *tunnel_panels(),
    ]
    for number, item in enumerate(panels, start=1):
        item["id"] = number
    names = [name for name, _ in VARIABLES]
    return {
        **IMPORT_HEADER,
        "uid": "vpnwatch",
        "title": "vpnwatch",
        "description": "VPN and circumvention endpoints probed with real handshakes, per vantage.",
        "tags": ["vpnwatch", "vpn", "censorship"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": [BUILTIN_ANNOTATIONS, VERDICT_ANNOTATIONS]},
        "links": [],
        "templating": {
            "list": [
                datasource_variable(),
                *(
                    variable(name, label, names[:index])
                    for index, (name, label) in enumerate(VARIABLES)
                ),
            ]
        },
        "panels": panels,
    }


def datasource_variable() -> Json:
    """The Prometheus every query goes to: on import the one picked for ``DS_PROMETHEUS``."""
    chosen = f"${{{DATASOURCE_INPUT}}}"
    return {
        "type": "datasource",
        "name": DATASOURCE_VARIABLE,
        "label": "Data source",
        "query": "prometheus",
        "current": {"selected": False, "text": chosen, "value": chosen},
        "refresh": 1,
        "regex": "",
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
    }


#: What Grafana shows for ``__inputs``: the Prometheus to bind when importing the JSON.
IMPORT_HEADER: Json = {
    "__inputs": [
        {
            "name": DATASOURCE_INPUT,
            "label": "Prometheus",
            "description": "The Prometheus that scrapes vpnwatch (or receives its sites' writes).",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ],
    "__requires": [
        {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
    ],
}
BUILTIN_ANNOTATIONS: Json = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}
#: A region on every time series for each stretch a target was failing or offline: the incidents
#: the report lists, where the curves show them.
VERDICT_ANNOTATIONS: Json = {
    "name": "Incidents (verdict changes)",
    "datasource": DATASOURCE,
    "enable": True,
    "hide": False,
    "iconColor": "red",
    "expr": (
        "max by (vantage, target, protocol, vpnwatch_verdict) "
        f'(vpnwatch_verdict{{vpnwatch_verdict!="ok", {SELECTOR}}}) == 1'
    ),
    "step": "1m",
    "titleFormat": "{{target}} {{vpnwatch_verdict}}",
    "textFormat": "{{protocol}} target {{target}} is {{vpnwatch_verdict}} from {{vantage}}",
    "tagKeys": "vantage,protocol,vpnwatch_verdict",
    "useValueForTime": False,
}


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
