"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched.

Order follows what a reader needs first: the summary, then the charts, the incidents, how the
numbers were made and what they cannot show, and finally the queries and the data's SHA-256.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from vpnwatch.report.incidents import CONTROLS, Gap, Incident
from vpnwatch.report.narrative import Report, display_name, summary
from vpnwatch.report.render_svg import availability_chart
from vpnwatch.report.render_text import (
    MISSING,
    by_start,
    describe_failures,
    edges,
    format_latency,
    verdict_text,
    what_text,
)
from vpnwatch.report.timespec import format_duration, format_local, format_step, format_utc
from vpnwatch.result import Failure

#: What each probe does, in the words a reader without a networking background can follow.
PROBE_DESCRIPTIONS = {
    "wireguard": (
        "sends a WireGuard handshake initiation with the configured keys and counts success only"
        " when the server's response decrypts and authenticates (optionally, a ping through the"
        " tunnel is answered)."
    ),
    "openvpn": (
        "performs the OpenVPN control-channel handshake: the server's reset reply, a TLS"
        " session whose certificate verifies against the configuration's CA, and the key"
        " exchange the server accepts with its PUSH_REPLY."
    ),
    "obfs4": (
        "connects to the bridge and completes the obfs4 handshake; success needs the server"
        " hello's MAC and authentication to verify with the bridge's published key."
    ),
    CONTROLS: (
        "plain TCP connections, TLS handshakes and DNS look-ups to well-known hosts, run from"
        " the same site: when they fail too, the site's own network was down."
    ),
}

#: What each failure class means; every class of the taxonomy must have an entry.
FAILURE_MEANINGS = {
    Failure.TIMEOUT: "nothing (valid) came back in time: a silent drop, or a peer ignoring us",
    Failure.REFUSED: "the port was refused: ICMP port unreachable, or a TCP reset to the SYN",
    Failure.RESET: "the TCP connection was reset after it was up, typical of DPI injection",
    Failure.UNREACHABLE: "no route: ICMP host or network unreachable",
    Failure.EOF: "the peer closed the connection mid-handshake",
    Failure.DNS: "the endpoint's name did not resolve",
    Failure.TLS_CERT: "the server's certificate failed verification (interception?)",
    Failure.TLS: "another TLS failure: an alert, version or cipher mismatch",
    Failure.AUTH: "keys or credentials did not match, or the reply failed authentication",
    Failure.PROTOCOL: "the peer answered with something malformed or unexpected",
}

LIMITS = (
    "It sees the network only from its own vantage points: other providers, cities or times"
    " may differ.",
    "A failure class says how a handshake failed, not who caused it. A timeout may be a"
    " censor's silent drop, a server that is down, or heavy loss; compare sites and targets.",
    "Control probes reach a few well-known hosts. If those are allowed while much else is"
    " blocked, an outage is reported as blocking of the VPN protocols.",
    "Intervals without probe data (the monitor or Prometheus was down) count neither as"
    " failures nor as successes: the report says nothing about them.",
    "Incident boundaries are accurate to one step; degradation that never falls below the"
    " threshold is visible in the charts but is not an incident.",
    "Probes measure handshakes (and optionally one ping), not the speed or stability of"
    " tunnels that stay up: throttling of established connections is not measured.",
)

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
"""


def render_html(report: Report) -> str:
    title = f"VPN disruption report, {format_local(report.start, report.zone)} to " + format_local(
        report.end, report.zone
    )
    body = [
        "<header>",
        "<h1>VPN disruption report</h1>",
        f'<p class="span">{escape(_span(report))}</p>',
        "</header>",
        _summary(report),
        _charts(report),
        _incidents(report),
        _methodology(report),
        _data(report),
        f"<footer>Generated by vpnwatch {escape(report.version)} at "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _span(report: Report) -> str:
    return (
        f"{format_local(report.start, report.zone)} to {format_local(report.end, report.zone)}"
        f" ({report.zone_name}; {format_utc(report.start)} to {format_utc(report.end)}),"
        f" selection {report.selector}"
    )


def _summary(report: Report) -> str:
    items = "".join(f"<li>{escape(sentence)}</li>" for sentence in summary(report))
    blocked = [i for i in report.main_incidents() if i.scope == "protocol"]
    counts = (
        f"{len(blocked)} protocol incident{'s' if len(blocked) != 1 else ''}"
        f" ({sum(i.verdict == 'offline' for i in blocked)} during local outages),"
        f" {len(report.target_incidents())} per-target incidents."
    )
    return f'<section id="summary"><h2>Summary</h2><ul class="summary">{items}</ul>' + (
        f"<p>{escape(counts)}</p></section>"
    )


def _charts(report: Report) -> str:
    analysis = report.analysis
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
        name = "Control probes" if protocol == CONTROLS else display_name(protocol)
        chart = availability_chart(
            f"{name}: share of successful probes per {format_step(analysis.grid.step)}",
            analysis.grid,
            sites,
            bands,
            threshold=analysis.rules.threshold,
            zone=report.zone,
            gaps=gaps,
        )
        figures.append(f"<figure><figcaption>{escape(name)}</figcaption>{chart}</figure>")
    return (
        '<section id="availability"><h2>Availability</h2>'
        f"<p>Share of probes that succeeded per {format_step(analysis.grid.step)}, per site, in"
        f" {escape(report.zone_name)} time. Red bands: incidents; grey: the site was offline;"
        " outlined light bands: no data."
        " The dashed line is the threshold.</p>" + "".join(figures) + "</section>"
    )


def _incidents(report: Report) -> str:
    targets = report.target_incidents()
    return (
        '<section id="incidents"><h2>Incidents</h2>'
        + _table(by_start(report.main_incidents(), report.analysis.gaps), report)
        + f"<h3>Per target ({len(targets)})</h3>"
        + _table(targets, report)
        + "</section>"
    )


def _table(incidents: Sequence[Incident | Gap], report: Report) -> str:
    if not incidents:
        return "<p>None.</p>"
    head = (
        "<tr><th>Start</th><th>End</th><th>Duration</th><th>Site</th><th>What</th>"
        "<th>Verdict</th><th>Succeeded</th><th>Failures (dominant)</th>"
        "<th>Latency before → during</th><th>Controls</th></tr>"
    )
    rows = []
    for row in incidents:
        before, after = edges(row)
        if isinstance(row, Gap):
            verdict_class = "no-data"
            evidence = f"<td>{MISSING}</td>" * 4
        else:
            verdict_class = row.verdict
            evidence = (
                f"<td>{row.success_ratio:.0%} of {row.probes}</td>"
                f"<td>{escape(describe_failures(row))}</td>"
                f"<td>{format_latency(row.latency_before)} → "
                f"{format_latency(row.latency_during)}</td><td>{_percent(row.control_success)}</td>"
            )
        rows.append(
            "<tr>"
            f"<td>{_when(row.start, report)}{escape(before)}</td>"
            f"<td>{_when(row.end, report)}{escape(after)}</td>"
            f"<td>{format_duration(row.duration)}</td><td>{escape(row.site)}</td>"
            f"<td>{escape(what_text(row))}</td>"
            f'<td class="verdict-{verdict_class}">{escape(verdict_text(row))}</td>{evidence}</tr>'
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _percent(ratio: float | None) -> str:
    return MISSING if ratio is None else f"{ratio:.0%}"


def _when(timestamp: float, report: Report) -> str:
    local = escape(format_local(timestamp, report.zone))
    return f'{local}<span class="utc">{escape(format_utc(timestamp))}</span>'


def _methodology(report: Report) -> str:
    rules = report.analysis.rules
    step = format_step(report.analysis.grid.step)
    probes = "".join(
        f"<dt>{escape('Controls' if name == CONTROLS else display_name(name))}</dt>"
        f"<dd>{escape(text)}</dd>"
        for name, text in PROBE_DESCRIPTIONS.items()
    )
    failures = "".join(
        f"<tr><td><code>{failure.value}</code></td><td>{escape(meaning)}</td></tr>"
        for failure, meaning in FAILURE_MEANINGS.items()
    )
    limits = "".join(f"<li>{escape(limit)}</li>" for limit in LIMITS)
    return (
        '<section id="methodology"><h2>Methodology</h2>'
        "<p>vpnwatch performs real protocol handshakes against each target at a fixed interval"
        " and counts a probe as successful only when the handshake was verified"
        " cryptographically. Prometheus stored the counts; this report reads them back.</p>"
        f"<h3>What each probe does</h3><dl>{probes}</dl>"
        "<h3>How incidents are found</h3><ol>"
        f"<li>Time is cut into {step} intervals. An interval is bad when probes ran in it and"
        f" fewer than {rules.threshold:.0%} of them succeeded.</li>"
        f"<li>Bad periods separated by at most {format_duration(rules.merge_gap)} of measured"
        " time are merged into one incident (flapping); time without data between them does"
        " not separate them, and the incident says how much of it had none.</li>"
        "<li>An incident is kept when its probes were failing for at least"
        f" {format_duration(rules.min_duration)}: each interval's share of failed probes times"
        " its length, added up, which does not depend on the interval length.</li>"
        "<li>An incident marked <em>or earlier</em> or <em>or later</em> touches the start or"
        " end of the report, or a period without data: it may have begun before, or lasted"
        " after, what the report can see. Periods of at least"
        f" {format_duration(rules.min_duration)} with no data from a site, or from one protocol"
        " there, are listed as <em>no data</em>.</li>"
        "<li>This runs for each target, for each protocol at each site (all its targets'"
        " probes together) and for each site's control probes. An incident is <em>offline</em>"
        " when the site's control probes were bad in at least half of its intervals,"
        " otherwise <em>failing</em>.</li>"
        "<li>Latency is the mean handshake time of successful probes: in the hour before the"
        " incident, and during it.</li></ol>"
        f"<h3>Failure classes</h3><table><tbody>{failures}</tbody></table>"
        f"<h3>What this report cannot tell</h3><ul>{limits}</ul></section>"
    )


def _data(report: Report) -> str:
    dataset = report.dataset
    queries = escape("\n".join(dataset.queries))
    return (
        '<section id="data"><h2>Data</h2>'
        f"<p>Read from <code>{escape(report.prometheus)}</code>: range queries at a"
        f" {format_step(dataset.grid.step)} step from {escape(format_utc(dataset.grid.start))}"
        f" to {escape(format_utc(dataset.grid.end))}. Counters are read as values at each step"
        " and differenced here, so every probe is counted in exactly one interval"
        " (<code>series:</code> lines are series look-ups):</p>"
        f"<pre>{queries}</pre>"
        f'<p>SHA-256 of the data: <code class="sha">{dataset.sha256}</code>. It covers, for'
        " each range query in order, the query text and every series' labels and values at"
        " each step; re-running the queries over the same range gives the same digest"
        " while the data in Prometheus is unchanged.</p></section>"
    )
