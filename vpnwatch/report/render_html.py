"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched.

Order follows what a reader needs first: the summary, then the charts, the incidents, how the
numbers were made and what they cannot show, and finally the queries and the data's SHA-256.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from vpnwatch.report.incidents import CONTROLS, Gap, Incident
from vpnwatch.report.narrative import Report, described, display_name, duration, summary
from vpnwatch.report.render_svg import availability_chart
from vpnwatch.report.render_text import (
    INCIDENT_COLUMNS,
    MISSING,
    by_start,
    describe_failures,
    edges,
    format_latency,
    verdict_text,
    what_text,
)
from vpnwatch.report.timespec import format_local, format_step, format_utc
from vpnwatch.result import Failure

#: What each probe does, as catalogue keys (``report.probe.<name>``), in the order shown.
#: The limits the methodology lists, as keys ``report.limit.<name>``.
LIMITS = ("vantage", "cause", "controls", "gaps", "accuracy", "handshakes")
#: Each failure class is explained by ``report.failure.<class>``: every class must have one.
FAILURE_KEYS = {failure: f"report.failure.{failure.value}" for failure in Failure}


#: Forbids every script and request: the report is read offline, and printed to PDF as is.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827;margin:0 auto;
max-width:1000px;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid
#e5e7eb}h3{font-size:16px;margin:18px 0 6px}.span{color:#4b5563;margin:0}
.summary li{margin:4px 0;font-size:16px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f9fafb}.utc{color:#6b7280;font-size:12px;display:block}
.verdict-failing{color:#b91c1c;font-weight:600}.verdict-offline{color:#4b5563;font-weight:600}.verdict-no-data{color:#6b7280;font-style:italic}
figure{margin:8px 0 18px}figcaption{font-weight:600}svg{width:100%;height:auto}
svg .tick{font-size:11px;fill:#4b5563}svg .legend{font-size:11px;fill:#111827}
pre{background:#f3f4f6;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
code{font-size:12px}.sha{word-break:break-all}dt{font-weight:600}footer{color:#6b7280;
margin-top:32px;font-size:12px}
@page{size:A4 landscape;margin:12mm}
@media print{body{max-width:none;padding:0;font-size:12px}table{font-size:10px}.utc{font-size:9px}
#incidents td:nth-child(-n+2){white-space:nowrap}h2,h3{break-after:avoid}
tr,figure,li{break-inside:avoid}}
"""


def render_html(report: Report) -> str:
    m = report.messages
    title = m("report.title")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        "<header>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="span">{escape(_span(report))}</p>',
        "</header>",
        _summary(report),
        _charts(report),
        _incidents(report),
        _methodology(report),
        _data(report),
        f"<footer>{escape(m('report.footer', version=report.version, time=generated))}</footer>",
    ]
    heading = m(
        "report.heading",
        start=format_local(report.start, report.zone),
        end=format_local(report.end, report.zone),
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(m.language)}" dir="{m.direction}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(heading)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _span(report: Report) -> str:
    ltr = report.messages.ltr
    return report.messages(
        "report.span",
        start=ltr(format_local(report.start, report.zone)),
        end=ltr(format_local(report.end, report.zone)),
        zone=ltr(report.zone_name),
        start_utc=ltr(format_utc(report.start)),
        end_utc=ltr(format_utc(report.end)),
        selector=ltr(report.selector),
    )


def _summary(report: Report) -> str:
    m = report.messages
    items = "".join(f"<li>{escape(sentence)}</li>" for sentence in summary(report))
    blocked = [i for i in report.main_incidents() if i.scope == "protocol"]
    counts = m(
        "report.counts",
        protocol_incidents=m("report.protocol_incidents", count=len(blocked)),
        offline=sum(i.verdict == "offline" for i in blocked),
        targets=len(report.target_incidents()),
    )
    return (
        f'<section id="summary"><h2>{escape(m("report.summary"))}</h2>'
        f'<ul class="summary">{items}</ul><p>{escape(counts)}</p></section>'
    )


def _charts(report: Report) -> str:
    m = report.messages
    analysis = report.analysis
    step = format_step(analysis.grid.step)
    figures = []
    for protocol in [*analysis.protocols_at(), CONTROLS]:
        sites = [
            (site, analysis.rollups[site, protocol])
            for site in analysis.sites
            if (site, protocol) in analysis.rollups
        ]
        if not sites:
            continue
        scope = "site" if protocol == CONTROLS else "protocol"
        bands = [i for i in report.incidents if i.scope == scope and i.protocol == protocol]
        shown = {site for site, _ in sites}
        gaps = [
            gap for gap in analysis.gaps if gap.site in shown and gap.protocol in ("", protocol)
        ]
        name = m("report.control_probes") if protocol == CONTROLS else display_name(protocol)
        chart = availability_chart(
            m("report.chart_title", name=name, step=step),
            analysis.grid,
            sites,
            bands,
            threshold=analysis.rules.threshold,
            zone=report.zone,
            gaps=gaps,
        )
        figures.append(f"<figure><figcaption>{escape(name)}</figcaption>{chart}</figure>")
    intro = m("report.availability_intro", step=step, zone=m.ltr(report.zone_name))
    return (
        f'<section id="availability"><h2>{escape(m("report.availability"))}</h2>'
        f"<p>{escape(intro)}</p>" + "".join(figures) + "</section>"
    )


def _incidents(report: Report) -> str:
    m = report.messages
    targets = report.target_incidents()
    return (
        f'<section id="incidents"><h2>{escape(m("report.incidents"))}</h2>'
        + _table(by_start(report.main_incidents(), report.analysis.gaps), report)
        + f"<h3>{escape(m('report.per_target', count=len(targets)))}</h3>"
        + _table(targets, report)
        + "</section>"
    )


_COLUMNS = (*INCIDENT_COLUMNS, "controls")


def _table(incidents: Sequence[Incident | Gap], report: Report) -> str:
    m = report.messages
    if not incidents:
        return f"<p>{escape(m('report.none'))}</p>"
    head = "".join(f"<th>{escape(m(f'report.column.{column}'))}</th>" for column in _COLUMNS)
    rows = []
    for row in incidents:
        before, after = edges(row, m)
        if isinstance(row, Gap):
            verdict_class = "no-data"
            evidence = f"<td>{MISSING}</td>" * 4
        else:
            verdict_class = row.verdict
            succeeded = m("report.succeeded", percent=f"{row.success_ratio:.0%}", probes=row.probes)
            evidence = (
                f"<td>{escape(succeeded)}</td>"
                f"<td>{escape(describe_failures(row, m))}</td>"
                f"<td>{escape(format_latency(row.latency_before, m))} → "
                f"{escape(format_latency(row.latency_during, m))}</td>"
                f"<td>{_percent(row.control_success)}</td>"
            )
        rows.append(
            "<tr>"
            f"<td>{_when(row.start, report)}{escape(before)}</td>"
            f"<td>{_when(row.end, report)}{escape(after)}</td>"
            f"<td>{escape(duration(row.duration, m))}</td><td>{escape(row.site)}</td>"
            f"<td>{escape(what_text(row, m))}</td>"
            f'<td class="verdict-{verdict_class}">{escape(verdict_text(row, m))}</td>'
            f"{evidence}</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _percent(ratio: float | None) -> str:
    return MISSING if ratio is None else f"{ratio:.0%}"


def _when(timestamp: float, report: Report) -> str:
    ltr = report.messages.ltr
    local = escape(ltr(format_local(timestamp, report.zone)))
    return f'{local}<span class="utc">{escape(ltr(format_utc(timestamp)))}</span>'


def _methodology(report: Report) -> str:
    m = report.messages
    rules = report.analysis.rules
    probes = "".join(
        f"<dt>{escape(m('report.controls') if name == CONTROLS else display_name(name))}</dt>"
        f"<dd>{escape(m(f'report.probe.{name}'))}</dd>"
        for name in [*described(report.analysis.protocols_at()), CONTROLS]
    )
    failures = "".join(
        f"<tr><td><code>{failure.value}</code></td><td>{escape(m(key))}</td></tr>"
        for failure, key in FAILURE_KEYS.items()
    )
    limits = "".join(f"<li>{escape(m(f'report.limit.{limit}'))}</li>" for limit in LIMITS)
    rules_text = [
        m(
            "report.methodology.rule_bad",
            step=format_step(report.analysis.grid.step),
            threshold=f"{rules.threshold:.0%}",
        ),
        m("report.methodology.rule_merge", gap=duration(rules.merge_gap, m)),
        m("report.methodology.rule_short", duration=duration(rules.min_duration, m)),
    ]
    steps = "".join(f"<li>{escape(text)}</li>" for text in rules_text)
    open_edges = m.markup(
        "report.methodology.rule_open",
        or_earlier=f"<em>{escape(m('report.or_earlier').strip())}</em>",
        or_later=f"<em>{escape(m('report.or_later').strip())}</em>",
        duration=escape(duration(rules.min_duration, m)),
        no_data=f"<em>{escape(m('verdict.no_data'))}</em>",
    )
    scopes = m.markup(
        "report.methodology.rule_scopes",
        offline=f"<em>{escape(m('verdict.offline'))}</em>",
        failing=f"<em>{escape(m('verdict.failing'))}</em>",
    )
    return (
        f'<section id="methodology"><h2>{escape(m("report.methodology.title"))}</h2>'
        f"<p>{escape(m('report.methodology.intro'))}</p>"
        f"<h3>{escape(m('report.methodology.probes'))}</h3><dl>{probes}</dl>"
        f"<h3>{escape(m('report.methodology.how'))}</h3><ol>{steps}<li>{open_edges}</li>"
        f"<li>{scopes}</li><li>{escape(m('report.methodology.rule_latency'))}</li></ol>"
        f"<h3>{escape(m('report.methodology.failure_classes'))}</h3>"
        f"<table><tbody>{failures}</tbody></table>"
        f"<h3>{escape(m('report.methodology.limits'))}</h3><ul>{limits}</ul></section>"
    )


def _data(report: Report) -> str:
    m = report.messages
    dataset = report.dataset
    queries = escape("\n".join(dataset.queries))
    read = m.markup(
        "report.data.read",
        prometheus=f"<code>{escape(report.prometheus)}</code>",
        step=escape(format_step(dataset.grid.step)),
        start=escape(format_utc(dataset.grid.start)),
        end=escape(format_utc(dataset.grid.end)),
        series="<code>series:</code>",
    )
    sha = m.markup("report.data.sha", sha=f'<code class="sha">{dataset.sha256}</code>')
    return (
        f'<section id="data"><h2>{escape(m("report.data.title"))}</h2>'
        f"<p>{read}</p><pre>{queries}</pre><p>{sha}</p></section>"
    )
