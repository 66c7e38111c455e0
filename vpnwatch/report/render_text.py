"""The report as JSON (for scripts), CSV (for spreadsheets) and Markdown (for pasting).

JSON and CSV carry every incident at every scope with the same fields; times are RFC 3339 UTC
plus the report's zone, durations in seconds, latencies in seconds, ratios in [0, 1].
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from vpnwatch.messages import Catalogue
from vpnwatch.report.incidents import Incident
from vpnwatch.report.narrative import Report, display_name, duration, summary
from vpnwatch.report.timespec import (
    format_local,
    format_local_iso,
    format_rfc3339,
    format_step,
    format_utc,
)

#: What tables show for a value that does not exist (no successful probe, no controls).
MISSING = "\N{EN DASH}"

CSV_COLUMNS = (
    "scope",
    "site",
    "protocol",
    "targets",
    "start",
    "end",
    "start_local",
    "end_local",
    "duration_seconds",
    "verdict",
    "probes",
    "failures",
    "success_ratio",
    "failure_classes",
    "stages",
    "latency_before_seconds",
    "latency_during_seconds",
    "control_success_ratio",
)


def incident_record(incident: Incident, report: Report) -> dict[str, Any]:
    """One incident as plain data: the JSON object, and (flattened) the CSV row."""
    return {
        "scope": incident.scope,
        "site": incident.site,
        "protocol": incident.protocol,
        "targets": list(incident.targets),
        "start": format_rfc3339(incident.start),
        "end": format_rfc3339(incident.end),
        "start_local": format_local_iso(incident.start, report.zone),
        "end_local": format_local_iso(incident.end, report.zone),
        "duration_seconds": round(incident.duration),
        "verdict": incident.verdict,
        "probes": incident.probes,
        "failures": incident.failures,
        "success_ratio": round(incident.success_ratio, 4),
        "failure_classes": dict(incident.failure_classes),
        "stages": dict(incident.stages),
        "latency_before_seconds": _rounded(incident.latency_before),
        "latency_during_seconds": _rounded(incident.latency_during),
        "control_success_ratio": _rounded(incident.control_success),
    }


def provenance(report: Report) -> dict[str, Any]:
    """Where the numbers came from and the rules applied: enough to reproduce the report."""
    rules = report.analysis.rules
    return {
        "prometheus": report.prometheus,
        "from": format_rfc3339(report.start),
        "to": format_rfc3339(report.end),
        "timezone": report.zone_name,
        "step_seconds": round(report.dataset.grid.step),
        "selector": report.selector,
        "threshold": rules.threshold,
        "merge_gap_seconds": round(rules.merge_gap),
        "min_duration_seconds": round(rules.min_duration),
        "queries": list(report.dataset.queries),
        "data_sha256": report.dataset.sha256,
        "generator": f"vpnwatch {report.version}",
    }


def render_json(report: Report) -> str:
    document = {
        "report": provenance(report),
        "summary": summary(report),
        "incidents": [incident_record(i, report) for i in report.incidents],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for incident in report.incidents:
        row = incident_record(incident, report)
        row["targets"] = " ".join(row["targets"])
        for column in ("failure_classes", "stages"):
            row[column] = " ".join(f"{name}:{count}" for name, count in row[column].items())
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()


def render_markdown(report: Report) -> str:
    m = report.messages
    facts = provenance(report)
    step = format_step(report.dataset.grid.step)
    lines = [
        f"# {m('report.title')}",
        "",
        m(
            "report.markdown_facts",
            span=_span_text(report),
            step=step,
            threshold=f"{report.analysis.rules.threshold:.0%}",
            selector=f"`{report.selector}`",
        ),
        "",
        f"## {m('report.summary')}",
        "",
        *(f"- {sentence}" for sentence in summary(report)),
        "",
        f"## {m('report.incidents')}",
        "",
        *_incident_table(report.main_incidents(), report),
        "",
        f"### {m('report.per_target', count=len(report.target_incidents()))}",
        "",
        *_incident_table(report.target_incidents(), report),
        "",
        f"## {m('report.data.title')}",
        "",
        m("report.markdown_queries", prometheus=facts["prometheus"], step=step),
        "",
        "```promql",
        *report.dataset.queries,
        "```",
        "",
        m("report.markdown_sha", sha=f"`{report.dataset.sha256}`", generator=facts["generator"]),
        "",
    ]
    return "\n".join(lines)


#: The columns of an incidents table, as ``report.column.<name>`` keys (HTML adds controls).
INCIDENT_COLUMNS = (
    "start",
    "end",
    "duration",
    "site",
    "what",
    "verdict",
    "succeeded",
    "failures",
    "latency",
)


def _incident_table(incidents: Sequence[Incident], report: Report) -> list[str]:
    m = report.messages
    if not incidents:
        return [m("report.none")]
    header = [
        "| " + " | ".join(m(f"report.column.{column}") for column in INCIDENT_COLUMNS) + " |",
        "|---" * len(INCIDENT_COLUMNS) + "|",
    ]
    rows = []
    for incident in incidents:
        what = display_name(incident.protocol)
        if incident.scope == "target":
            what += f" ({', '.join(incident.targets)})"
        rows.append(
            f"| {format_local(incident.start, report.zone)} ({_utc_time(incident.start)}) "
            f"| {format_local(incident.end, report.zone)} ({_utc_time(incident.end)}) "
            f"| {duration(incident.duration, m)} | {incident.site} | {what} "
            f"| {m(f'verdict.{incident.verdict}')} | {incident.success_ratio:.0%} "
            f"| {describe_failures(incident, m)} "
            f"| {format_latency(incident.latency_before, m)} → "
            f"{format_latency(incident.latency_during, m)} |"
        )
    return header + rows


def describe_failures(incident: Incident, messages: Catalogue, limit: int = 3) -> str:
    """``timeout 95% at handshake``: the dominant classes and stages, as shares of failures."""
    if not incident.failures:
        return messages("report.no_failures")
    classes = ", ".join(
        f"{name} {count / incident.failures:.0%}"
        for name, count in incident.failure_classes[:limit]
    )
    stages = ", ".join(name or "?" for name, _count in incident.stages[:limit])
    return messages("report.failures", classes=classes, stages=stages)


def format_latency(seconds: float | None, messages: Catalogue) -> str:
    return (
        MISSING
        if seconds is None
        else messages("report.milliseconds", value=f"{seconds * 1000:.0f}")
    )


def _span_text(report: Report) -> str:
    return (
        f"{format_local(report.start, report.zone)} to {format_local(report.end, report.zone)}"
        f" ({format_utc(report.start)} to {format_utc(report.end)})"
    )


def _utc_time(timestamp: float) -> str:
    return format_utc(timestamp)[11:]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
