"""The report as JSON (for scripts), CSV (for spreadsheets) and Markdown (for pasting).

JSON and CSV carry every incident at every scope with the same fields; times are RFC 3339 UTC
plus the report's zone, durations in seconds, latencies in seconds, ratios in [0, 1].

Site, target and failure names are label values, and Prometheus stores whatever a scraped
exporter wrote: every format treats them as hostile. JSON escapes by construction; CSV cells
are neutralised as OWASP recommends for CSV injection (a cell a spreadsheet would read as a
formula starts with a quote, and every text cell is quoted); Markdown escapes what would make
markup, links or table cells, and shows control characters as escapes.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from vpnwatch.messages import Catalogue
from vpnwatch.printable import printable
from vpnwatch.report.incidents import Gap, Incident
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
#: A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: What CommonMark and GitHub's tables read as markup: emphasis, code, links, HTML, entities,
#: strike-through and cell borders. (Parentheses only matter after a ``]``, escaped here.)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")

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
    "open_at_start",
    "open_at_end",
    "without_data_seconds",
)
#: The verdict column of a period without data, in the tables and the CSV.
NO_DATA = "no data"


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
        "open_at_start": incident.open_start,
        "open_at_end": incident.open_end,
        "without_data_seconds": round(incident.without_data),
    }


def gap_record(gap: Gap, report: Report) -> dict[str, Any]:
    """A period without data: ``protocol`` empty when the whole site had none."""
    return {
        "scope": "protocol" if gap.protocol else "site",
        "site": gap.site,
        "protocol": gap.protocol,
        "start": format_rfc3339(gap.start),
        "end": format_rfc3339(gap.end),
        "start_local": format_local_iso(gap.start, report.zone),
        "end_local": format_local_iso(gap.end, report.zone),
        "duration_seconds": round(gap.duration),
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
        "gaps": [gap_record(gap, report) for gap in report.analysis.gaps],
        "degraded": [incident_record(i, report) for i in report.analysis.degraded],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=CSV_COLUMNS, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
    )
    writer.writeheader()
    for incident in (*report.incidents, *report.analysis.degraded):
        row = incident_record(incident, report)
        row["targets"] = " ".join(row["targets"])
        for column in ("failure_classes", "stages"):
            row[column] = " ".join(f"{name}:{count}" for name, count in row[column].items())
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    for gap in report.analysis.gaps:  # after the incidents: rows of their own kind
        row = {**gap_record(gap, report), "verdict": NO_DATA}
        writer.writerow({key: csv_cell(row.get(key)) for key in CSV_COLUMNS})
    return out.getvalue()


def by_start(incidents: Sequence[Incident], gaps: Sequence[Gap]) -> list[Incident | Gap]:
    """Incidents and periods without data in one table, in time order (stable)."""
    return sorted([*incidents, *gaps], key=lambda row: row.start)


def edges(row: Incident | Gap, m: Catalogue) -> tuple[str, str]:
    """What follows the start and end times: whether the incident may reach further."""
    if isinstance(row, Gap):
        return "", ""
    return (
        m("report.or_earlier") if row.open_start else "",
        m("report.or_later") if row.open_end else "",
    )


def what_text(row: Incident | Gap, m: Catalogue) -> str:
    """The table's "what" cell: protocol (targets), control probes, or what had no data."""
    if isinstance(row, Gap):
        if row.protocol:
            return m("report.what_gap", protocol=display_name(row.protocol))
        return m("report.what_gap_all")
    if row.scope == "site":
        return m("report.what_controls")
    what = display_name(row.protocol)
    return what + f" ({', '.join(row.targets)})" if row.scope == "target" else what


def verdict_text(row: Incident | Gap, m: Catalogue) -> str:
    """The verdict in the reader's language, with how much of the incident had no data."""
    if isinstance(row, Gap):
        return m("verdict.no_data")
    verdict = m(f"verdict.{row.verdict}")
    if row.without_data:
        return m(
            "report.verdict_without_data", verdict=verdict, duration=duration(row.without_data, m)
        )
    return verdict


def csv_cell(value: object) -> object:
    """A value a spreadsheet shows as written: text that would start a formula gets a ``'``.

    Numbers stay numbers (none of the report's is negative); None is an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def markdown_text(text: str) -> str:
    """``text`` as Markdown that shows exactly it: no markup, no HTML, one table cell."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(text))


def markdown_code(text: str) -> str:
    """``text`` as an inline code span, fenced by more backticks than it holds in a row."""
    text = printable(text)
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", text)), default=0))
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def render_markdown(report: Report) -> str:
    m = report.messages
    facts = provenance(report)
    step = format_step(report.dataset.grid.step)
    # The report.markdown_* templates are Markdown by design; what goes into them is escaped.
    lines = [
        f"# {markdown_text(m('report.title'))}",
        "",
        m(
            "report.markdown_facts",
            span=_span_text(report),
            step=step,
            threshold=f"{report.analysis.rules.threshold:.0%}",
            selector=markdown_code(report.selector),
        ),
        "",
        f"## {markdown_text(m('report.summary'))}",
        "",
        *(f"- {markdown_text(sentence)}" for sentence in summary(report)),
        "",
        f"## {markdown_text(m('report.incidents'))}",
        "",
        *_incident_table(by_start(report.main_incidents(), report.analysis.gaps), report),
        "",
        f"### {markdown_text(m('report.per_target', count=len(report.target_incidents())))}",
        "",
        *_incident_table(report.target_incidents(), report),
        "",
        f"## {markdown_text(m('report.degraded'))}",
        "",
        markdown_text(m("report.degraded_intro")),
        "",
        *_incident_table(report.analysis.degraded, report),
        "",
        f"## {markdown_text(m('report.data.title'))}",
        "",
        m("report.markdown_queries", prometheus=markdown_code(facts["prometheus"]), step=step),
        "",
        *_code_block(report.dataset.queries, "promql"),
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


def _incident_table(rows: Sequence[Incident | Gap], report: Report) -> list[str]:
    m = report.messages
    if not rows:
        return [markdown_text(m("report.none"))]
    header = [
        "| "
        + " | ".join(markdown_text(m(f"report.column.{column}")) for column in INCIDENT_COLUMNS)
        + " |",
        "|---" * len(INCIDENT_COLUMNS) + "|",
    ]
    lines = []
    for row in rows:
        before, after = edges(row, m)
        evidence = (
            f"| {MISSING} | {MISSING} | {MISSING} |"
            if isinstance(row, Gap)
            else f"| {row.success_ratio:.0%} | {markdown_text(describe_failures(row, m))} "
            f"| {markdown_text(format_latency(row.latency_before, m))} → "
            f"{markdown_text(format_latency(row.latency_during, m))} |"
        )
        lines.append(
            f"| {format_local(row.start, report.zone)} ({_utc_time(row.start)})"
            f"{markdown_text(before)} "
            f"| {format_local(row.end, report.zone)} ({_utc_time(row.end)}){markdown_text(after)} "
            f"| {markdown_text(duration(row.duration, m))} | {markdown_text(row.site)} "
            f"| {markdown_text(what_text(row, m))} | {markdown_text(verdict_text(row, m))} "
            f"{evidence}"
        )
    return header + lines


def _code_block(lines: Sequence[str], language: str) -> list[str]:
    """A fenced code block that no line inside can close: the fence outgrows any run in it."""
    shown = [printable(line) for line in lines]
    longest = max((len(run) for line in shown for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *shown, fence]


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
