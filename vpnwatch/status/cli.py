"""``vpnwatch status``: write the public status page (HTML or PDF) from Prometheus.

Meant to run from a timer (deploy/status/): each run reads the last ``--days`` days, writes the
page to a temporary file beside the output and renames it over the old one, so a web server
never serves half a page. Exit status as ``vpnwatch report``: 0 written, 1 Prometheus
unreachable or failing, 2 bad input; every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vpnwatch.errors import ConfigError
from vpnwatch.messages import load as load_messages
from vpnwatch.progress import Step
from vpnwatch.report.browser import print_pdf
from vpnwatch.report.cli import Source, add_source_arguments, argument, run_reader
from vpnwatch.report.dataset import LOAD_STEPS, TARGET_INFO
from vpnwatch.report.incidents import CONTROLS
from vpnwatch.report.query import Grid
from vpnwatch.report.timespec import parse_duration
from vpnwatch.status.board import Board, build_board, day_starts
from vpnwatch.status.render import render_status

#: The default resolution: five minutes holds several probes at the usual 30-60 s interval,
#: and 90 days of it is 26,000 steps per series, fetched in chunks.
DEFAULT_STEP = "5m"
_FORMATS = ("html", "pdf")


def add_status_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``status`` on the ``vpnwatch`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "status",
        help="write a public status page (HTML or PDF): each protocol at each site, 90 days",
        description=(
            "Write a self-contained status page for customers or staff: one row per protocol"
            " and site with its state now and a bar per day, and the incidents with their"
            " verdicts. No endpoint addresses unless --show-endpoints. Run it from a timer."
        ),
    )
    add_source_arguments(parser, step_help=f"resolution (default {DEFAULT_STEP})")
    parser.add_argument(
        "--days", type=int, default=90, metavar="N", help="days of bars (default 90)"
    )
    parser.add_argument(
        "--at",
        default="now",
        metavar="TIME",
        help="the page as it would have been at TIME (default now), as --from of report",
    )
    parser.add_argument(
        "--show-endpoints",
        action="store_true",
        help="list each row's targets and endpoint addresses (off: a public page hides them)",
    )
    parser.add_argument("--format", choices=_FORMATS, help="default: from -o's suffix, else html")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    parser.set_defaults(func=run_status)
    return parser


def run_status(args: argparse.Namespace) -> int:
    fmt = args.format or ("pdf" if args.output and args.output.suffix.lower() == ".pdf" else "html")

    def work(step: Step) -> str:
        if fmt == "pdf" and args.output is None:
            raise ConfigError("give a file with -o", where="--format pdf")
        if not 1 <= args.days <= 400:
            raise ConfigError(f"{args.days} is not between 1 and 400", where="--days")
        board = build_status(args, now=time.time(), step=step)
        step(f"writing {fmt}")
        html = render_status(board, load_messages(args.lang), days=args.days)
        if fmt == "pdf":
            print_pdf(html, args.output)
        else:
            _replace(html, args.output)
        return status_summary(board, args.output)

    return run_reader("status", LOAD_STEPS + 3, args.output, work)


def build_status(args: argparse.Namespace, *, now: float, step: Step = lambda _: None) -> Board:
    """Validate the arguments, fetch the ``--days`` up to ``--at`` and make the page's content."""
    source = Source.from_args(args)
    at = source.time("--at", args.at, now)
    resolution = argument("--step", parse_duration, args.step or DEFAULT_STEP)
    first = day_starts(at, args.days, source.zone)[0]
    _dataset, analysis = source.analyse(Grid.covering(first, at, resolution), step)
    step("listing endpoints")
    endpoints = _endpoints(source, first, at) if args.show_endpoints else None
    return build_board(
        analysis, now=at, days=args.days, zone=source.zone, zone_name=args.tz, endpoints=endpoints
    )


def _endpoints(
    source: Source, start: float, end: float
) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """(site, protocol) → its targets' (name, endpoint), from ``vpnwatch_target_info``."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for labels in source.client.series([source.selector.render(TARGET_INFO)], start, end):
        if labels.get("role") == "control" or labels.get("protocol") == CONTROLS:
            continue
        site = labels.get("site") or labels.get("instance") or "unknown"
        found.setdefault((site, labels.get("protocol", "")), set()).add(
            (labels.get("target", ""), labels.get("endpoint", ""))
        )
    return {key: tuple(sorted(pairs)) for key, pairs in found.items()}


def status_summary(board: Board, output: Path | None) -> str:
    """``wrote status.html: 6 rows at 2 sites, now 1 failing, 5 operational; 4 incidents``."""
    now = ", ".join(
        f"{count} {state.replace('_', ' ')}" for state, count in board.counts().items() if count
    )
    incidents = len(board.outages)
    return (
        f"wrote {output or 'stdout'}: {len(board.rows)} rows at {len(board.sites)} sites,"
        f" now {now}; {incidents} incident{'' if incidents == 1 else 's'}"
    )


def _replace(text: str, output: Path | None) -> None:
    """Write ``output`` whole or not at all: a web server may be serving the old page."""
    if output is None:
        sys.stdout.write(text)
        return
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=output.parent, prefix=f".{output.name}.", delete=False
        ) as file:
            temporary = file.name
            file.write(text)
        os.chmod(temporary, 0o644)  # a page for the public; a temporary file starts as 0600
        os.replace(temporary, output)
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise ConfigError(f"cannot write: {exc.strerror}", source=output) from None
