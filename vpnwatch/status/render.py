"""The status page as one self-contained HTML file: inline CSS, no script, nothing fetched.

Built for a phone first: rows stack, each day is a flexible bar, and the same page widens into
a grid on a desktop. A Content-Security-Policy forbids every fetch, so even a browser that
finds a URL somewhere in a label loads nothing. Every word comes from the message catalogue
(vpnwatch/messages), so a translated page is a catalogue file.
"""

from __future__ import annotations

from html import escape

from vpnwatch import __version__
from vpnwatch.messages import Catalogue
from vpnwatch.report.incidents import CONTROLS
from vpnwatch.report.narrative import display_name, duration
from vpnwatch.report.render_html import CSP
from vpnwatch.report.timespec import format_local
from vpnwatch.status.board import SEVERITY, Board, Day, Outage, Row

STYLE = """
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Nastaliq Urdu",sans-serif;
color:#111827;background:#f9fafb;margin:0 auto;max-width:960px;padding:16px}
h1{font-size:24px;margin:0}h2{font-size:18px;margin:24px 0 8px}
.overall{font-size:18px;font-weight:600;padding:12px 14px;border-radius:8px;margin:12px 0 4px}
.meta{color:#4b5563;font-size:13px;margin:2px 0}
.row{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;margin:8px 0;
break-inside:avoid}
.head{display:flex;justify-content:space-between;align-items:baseline;gap:8px;flex-wrap:wrap}
.name{font-weight:600}
.badge{font-size:13px;font-weight:600;padding:1px 8px;border-radius:999px;white-space:nowrap}
.bars{display:flex;gap:1px;height:32px;margin:8px 0 4px}
.bar{flex:1 1 0;min-width:1px;border-radius:1px}
.axis{display:flex;justify-content:space-between;color:#6b7280;font-size:12px;gap:8px}
.endpoints{font-size:13px;color:#374151;margin:6px 0 0;padding:0;list-style:none}
.s-operational{background:#16a34a;color:#fff}.s-degraded{background:#f59e0b;color:#111827}
.s-failing{background:#dc2626;color:#fff}.s-offline{background:#6b7280;color:#fff}
.s-no_data{background:#e5e7eb;color:#374151}
.overall.s-operational{background:#dcfce7;color:#14532d}
.overall.s-failing,.overall.s-degraded,.overall.s-offline{background:#fee2e2;color:#7f1d1d}
.overall.s-no_data{background:#f3f4f6;color:#374151}
ul.incidents{list-style:none;padding:0;margin:0}
ul.incidents li{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px 12px;
margin:6px 0;break-inside:avoid}
.when{color:#374151;font-size:14px;display:block}
dl.legend{display:grid;grid-template-columns:auto 1fr;gap:4px 10px;font-size:14px}
dl.legend dt{margin:0}dl.legend dd{margin:0}
footer{color:#6b7280;font-size:13px;margin-top:24px}
@media(min-width:720px){.rows{display:grid;grid-template-columns:1fr 1fr;gap:0 12px}}
@media print{body{background:#fff;max-width:none}.row,ul.incidents li{border-color:#d1d5db}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def render_status(board: Board, messages: Catalogue, *, days: int) -> str:
    """The whole page; ``days`` is how many days the bars cover."""
    when = messages.ltr(format_local(board.generated, board.zone))
    title = messages("status.title")
    body = [
        f"<header><h1>{escape(title)}</h1>",
        _overall(board, messages),
        f'<p class="meta">{escape(messages("status.generated", time=when))}'
        f" · {escape(messages('status.zone', zone=messages.ltr(board.zone_name)))}</p></header>",
        *(_site(board, site, messages, days) for site in board.sites),
        _outages(board, messages, days),
        _legend(messages),
        f"<footer><p>{escape(messages('status.how'))}</p><p>"
        + escape(messages("status.footer", version=__version__, time=when))
        + "</p></footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(messages.language)}" dir="{messages.direction}">\n<head>\n'
        '<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _overall(board: Board, messages: Catalogue) -> str:
    counts = board.counts()
    trouble = len(board.rows) - counts["operational"]
    if not trouble:
        return f'<p class="overall s-operational">{escape(messages("status.all_operational"))}</p>'
    worst = next(state for state in SEVERITY if counts[state])
    text = messages("status.trouble", count=trouble, total=len(board.rows))
    return f'<p class="overall s-{worst}">{escape(text)}</p>'


def _site(board: Board, site: str, messages: Catalogue, days: int) -> str:
    rows = [row for row in board.rows if row.site == site]
    return (
        f"<section><h2>{escape(messages('status.site', site=messages.ltr(site)))}</h2>"
        f'<div class="rows">{"".join(_row(row, board, messages, days) for row in rows)}</div>'
        "</section>"
    )


def _row(row: Row, board: Board, messages: Catalogue, days: int) -> str:
    state = escape(messages(f"state.{row.state}"))
    success = (
        messages("status.no_probes")
        if row.success is None
        else messages("status.success", percent=_percent(row.success, messages))
    )
    bars = "".join(_bar(day, board, messages) for day in row.days)
    endpoints = ""
    if row.endpoints:
        items = "".join(
            f"<li>{escape(target)}: <code>{escape(endpoint)}</code></li>"
            for target, endpoint in row.endpoints
        )
        endpoints = (
            f'<ul class="endpoints" aria-label="{escape(messages("status.endpoints"))}">'
            f"{items}</ul>"
        )
    return (
        f'<div class="row"><div class="head"><span class="name">'
        f"{escape(display_name(row.protocol))}</span>"
        f'<span class="badge s-{row.state}">{state}</span></div>'
        f'<div class="bars">{bars}</div>'
        f'<div class="axis"><span>{escape(messages("status.days_ago", count=days))}</span>'
        f"<span>{escape(success)}</span>"
        f"<span>{escape(messages('status.today'))}</span></div>{endpoints}</div>"
    )


def _bar(day: Day, board: Board, messages: Catalogue) -> str:
    date = messages.ltr(format_local(day.start, board.zone)[:10])
    state = messages(f"state.{day.state}")
    label = (
        messages("status.bar", date=date, state=state)
        if day.success is None
        else messages(
            "status.bar_success", date=date, state=state, percent=_percent(day.success, messages)
        )
    )
    return f'<span class="bar s-{day.state}" title="{escape(label)}"></span>'


def _outages(board: Board, messages: Catalogue, days: int) -> str:
    heading = escape(messages("status.incidents", days=days))
    if not board.outages:
        return (
            f"<section><h2>{heading}</h2><p>{escape(messages('status.no_incidents'))}</p></section>"
        )
    items = "".join(_outage(outage, board, messages) for outage in board.outages)
    return f'<section><h2>{heading}</h2><ul class="incidents">{items}</ul></section>'


def _outage(outage: Outage, board: Board, messages: Catalogue) -> str:
    if outage.protocol == CONTROLS:
        what = messages("status.whole_site", site=messages.ltr(outage.site))
    else:
        what = messages(
            "status.protocol_at_site",
            protocol=display_name(outage.protocol),
            site=messages.ltr(outage.site),
        )
    start = messages.ltr(format_local(outage.start, board.zone))
    if outage.ongoing:
        when = messages("status.ongoing", start=start, duration=duration(outage.duration, messages))
    else:
        when = messages(
            "status.span",
            start=start,
            end=messages.ltr(format_local(outage.end, board.zone)),
            duration=duration(outage.duration, messages),
        )
    success = messages("status.success", percent=_percent(outage.success, messages))
    return (
        f'<li><span class="badge s-{outage.state}">{escape(messages(f"state.{outage.state}"))}'
        f"</span> <strong>{escape(what)}</strong>"
        f'<span class="when">{escape(when)} · {escape(success)}</span></li>'
    )


def _legend(messages: Catalogue) -> str:
    entries = "".join(
        f'<dt><span class="badge s-{state}">{escape(messages(f"state.{state}"))}</span></dt>'
        f"<dd>{escape(messages(f'legend.{state}'))}</dd>"
        for state in ("operational", "degraded", "failing", "offline", "no_data")
    )
    heading = escape(messages("status.legend"))
    return f'<section><h2>{heading}</h2><dl class="legend">{entries}</dl></section>'


def _percent(ratio: float, messages: Catalogue) -> str:
    """``99.2%``: one decimal, since a status page is read for the difference 99 % to 100 %."""
    return messages.ltr(f"{ratio:.1%}")
