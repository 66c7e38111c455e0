"""``vpnwatch report``: a disruption report from the monitor's metrics in Prometheus.

Exit status: 0 report written; 1 Prometheus unreachable, refusing the credentials, failing,
answering something that is not its API, or not done within ``--timeout``; 2 bad input
(arguments, a credential or certificate file, a selector matching nothing, a range without
data). Every error is one line on stderr, and none shows a credential.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeVar

from vpnwatch.errors import ConfigError
from vpnwatch.messages import DEFAULT_LANGUAGE, languages
from vpnwatch.messages import load as load_messages
from vpnwatch.printable import printable
from vpnwatch.progress import Step, progress
from vpnwatch.report.access import ENV_PASSWORD, ENV_TOKEN, AccessOptions, prometheus_access
from vpnwatch.report.browser import print_pdf
from vpnwatch.report.dataset import LOAD_STEPS, Dataset, NoDataError, load_dataset
from vpnwatch.report.incidents import Analysis, Rules, analyse
from vpnwatch.report.narrative import Report
from vpnwatch.report.query import (
    PROMETHEUS_MAX_POINTS,
    TOTAL_TIMEOUT,
    Grid,
    PrometheusClient,
    PrometheusError,
)
from vpnwatch.report.render_html import render_html
from vpnwatch.report.render_text import render_csv, render_json, render_markdown
from vpnwatch.report.selector import Selector, parse_selector
from vpnwatch.report.timespec import format_utc, parse_duration, parse_time, parse_zone

EXIT_OK, EXIT_PROMETHEUS, EXIT_USAGE = 0, 1, 2
_T = TypeVar("_T")

RENDERERS: dict[str, Callable[[Report], str]] = {
    "html": render_html,
    "md": render_markdown,
    "csv": render_csv,
    "json": render_json,
}
_SUFFIX_FORMATS = {
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".csv": "csv",
    ".json": "json",
    ".pdf": "pdf",
}

#: Steps the automatic choice picks from. The finest is 5 minutes so that every interval holds
#: several probes at the usual 30-60 s probe interval: a ratio of one probe is only 0 or 1.
AUTO_STEPS = (300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the ``vpnwatch`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write a disruption report (HTML, PDF, Markdown, CSV, JSON) from Prometheus",
        description=(
            "Find the periods in which each protocol's handshakes mostly failed, per site, tell"
            " blocking from a site's own outage using its control probes, and write the"
            " evidence. TIME is RFC 3339 (2024-03-10T14:00:00Z), a date or a date and time in"
            " --tz (2024-03-10, 2024-03-10T19:00), or now-DURATION (now-24h, now-7d)."
        ),
    )
    parser.add_argument("--from", dest="start", default="now-24h", metavar="TIME")
    parser.add_argument("--to", dest="end", default="now", metavar="TIME")
    add_source_arguments(
        parser,
        step_help="resolution (default: the finest of 5m, 10m, 15m, 30m, 1h, ... within 11,000"
        " steps)",
    )
    parser.add_argument(
        "--format", choices=[*sorted(RENDERERS), "pdf"], help="default: from -o, else html"
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    parser.set_defaults(func=run_report)
    return parser


def add_source_arguments(parser: argparse.ArgumentParser, *, step_help: str) -> None:
    """What every command reading the monitor's data takes: where from, what, how to judge it,
    and for whom (time zone, language). ``vpnwatch report`` and ``vpnwatch status`` share it."""
    parser.add_argument(
        "--prometheus",
        required=True,
        metavar="URL",
        help="Prometheus base URL; http://user:password@host works, but see below",
    )
    parser.add_argument(
        "--match",
        default="",
        metavar="SELECTOR",
        help="label matchers, e.g. '{site=\"karachi-1\"}'; a site's control probes are always"
        " read for the sites selected",
    )
    parser.add_argument("--tz", default="UTC", metavar="ZONE", help="e.g. Asia/Karachi")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        metavar="RATIO",
        help="an interval is bad when fewer than this share of probes succeeded (default 0.5)",
    )
    parser.add_argument(
        "--merge-gap",
        default="10m",
        metavar="DURATION",
        help="join bad periods separated by at most this much (default 10m)",
    )
    parser.add_argument(
        "--min-duration",
        default="5m",
        metavar="DURATION",
        help="drop incidents shorter than this (default 5m)",
    )
    parser.add_argument(
        "--step",
        metavar="DURATION",
        help=step_help,
    )
    parser.add_argument(
        "--lang",
        default=DEFAULT_LANGUAGE,
        choices=languages(),
        help="language of the text (default en); a translation is a file in vpnwatch/messages",
    )
    parser.add_argument(
        "--timeout",
        default=f"{TOTAL_TIMEOUT:.0f}s",
        metavar="DURATION",
        help="give up when Prometheus has not answered every query within this (default 10m)",
    )
    _add_access_arguments(parser)


def _add_access_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "reaching a protected Prometheus",
        f"Secrets come from files or the environment (${ENV_PASSWORD}, ${ENV_TOKEN}) and are"
        " never printed.",
    )
    group.add_argument("--prometheus-user", metavar="USER", help="HTTP basic auth user")
    group.add_argument(
        "--prometheus-password-file",
        type=Path,
        metavar="FILE",
        help=f"basic auth password (default: ${ENV_PASSWORD})",
    )
    group.add_argument(
        "--prometheus-token-file",
        type=Path,
        metavar="FILE",
        help=f"bearer token (default: ${ENV_TOKEN})",
    )
    group.add_argument(
        "--prometheus-ca", type=Path, metavar="FILE", help="CA certificates (PEM) to trust"
    )
    group.add_argument(
        "--prometheus-cert", type=Path, metavar="FILE", help="client certificate (PEM)"
    )
    group.add_argument(
        "--prometheus-key", type=Path, metavar="FILE", help="the client certificate's key (PEM)"
    )
    group.add_argument(
        "--prometheus-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header, e.g. 'X-Scope-OrgID: tenant-1' (repeatable)",
    )


def run_report(args: argparse.Namespace) -> int:
    fmt = output_format(args.format, args.output)

    def work(step: Step) -> str:
        if fmt == "pdf" and args.output is None:
            raise ConfigError("give a file with -o", where="--format pdf")
        report = build_report(args, now=time.time(), step=step)
        step(f"writing {fmt}")
        if fmt == "pdf":
            print_pdf(render_html(report), args.output)
        else:
            write_text(RENDERERS[fmt](report), args.output)
        return report_summary(report, args.output)

    return run_reader("report", LOAD_STEPS + 2, args.output, work)


def run_reader(name: str, steps: int, output: Path | None, work: Callable[[Step], str]) -> int:
    """Run a command that reads Prometheus and writes ``output``: a progress bar of ``steps``
    on a terminal, any error as one line and its exit status, else ``work``'s summary line."""
    try:
        check_writable(output)
        with progress(name, steps) as step:
            done = work(step)
    except (ConfigError, NoDataError) as exc:
        print(f"vpnwatch {name}: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except PrometheusError as exc:  # it may quote a selector or labels: escaped, one line
        print(f"vpnwatch {name}: {printable(str(exc))}", file=sys.stderr)
        return EXIT_PROMETHEUS
    print(f"vpnwatch {name}: {printable(done)}", file=sys.stderr)
    return EXIT_OK


def report_summary(report: Report, output: Path | None) -> str:
    """``wrote r.pdf: 9 incidents at 2 sites (…) from 14 targets``: what a run produced."""
    main = report.main_incidents()
    sites = report.analysis.sites
    return (
        f"wrote {output or 'stdout'}: {_count(len(main), 'incident')}"
        f" ({_count(len(report.target_incidents()), 'per-target incident')})"
        f" at {_count(len(sites), 'site')} from {_count(len(report.dataset.series), 'target')},"
        f" {format_utc(report.start)} to {format_utc(report.end)}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class Source:
    """What every command reading the monitor's data is told: where from, what, how to judge."""

    zone: tzinfo
    selector: Selector
    rules: Rules
    client: PrometheusClient

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Source:
        """Validate the arguments of :func:`add_source_arguments`; ConfigError names the flag."""
        zone = argument("--tz", parse_zone, args.tz)
        selector = argument("--match", parse_selector, args.match)
        try:
            rules = Rules(
                threshold=args.threshold,
                merge_gap=argument("--merge-gap", parse_duration, args.merge_gap),
                min_duration=argument("--min-duration", parse_duration, args.min_duration),
            )
        except ValueError as exc:
            raise ConfigError(str(exc), where="--threshold") from None
        total_timeout = argument("--timeout", parse_duration, args.timeout)
        access = prometheus_access(
            args.prometheus,
            AccessOptions(
                user=args.prometheus_user,
                password_file=args.prometheus_password_file,
                token_file=args.prometheus_token_file,
                ca_file=args.prometheus_ca,
                cert_file=args.prometheus_cert,
                key_file=args.prometheus_key,
                headers=args.prometheus_header,
            ),
        )
        client = PrometheusClient(access, total_timeout=total_timeout)
        return cls(zone, selector, rules, client)

    def time(self, flag: str, text: str, now: float) -> float:
        return argument(flag, lambda value: parse_time(value, now=now, zone=self.zone), text)

    def analyse(self, grid: Grid, step: Step) -> tuple[Dataset, Analysis]:
        dataset = load_dataset(self.client, grid, self.selector, step)
        step("finding incidents")
        return dataset, analyse(dataset, self.rules)


def build_report(args: argparse.Namespace, *, now: float, step: Step = lambda _: None) -> Report:
    """Validate the arguments, fetch the data and find the incidents."""
    source = Source.from_args(args)
    start = source.time("--from", args.start, now)
    end = source.time("--to", args.end, now)
    if start > end:
        raise ConfigError("is after --to", where="--from")
    if start == end:
        raise ConfigError("empty range: --from equals --to", where="--from")
    resolution = (
        argument("--step", parse_duration, args.step) if args.step else auto_step(end - start)
    )
    dataset, analysis = source.analyse(Grid.covering(start, end, resolution), step)
    return Report(
        prometheus=source.client.url,
        start=start,
        end=end,
        zone=source.zone,
        zone_name=args.tz,
        selector=str(source.selector),
        dataset=dataset,
        analysis=analysis,
        messages=load_messages(args.lang),
    )


def auto_step(span: float) -> float:
    """The finest of :data:`AUTO_STEPS` that covers ``span`` in one query's worth of points."""
    for step in AUTO_STEPS:
        if math.ceil(span / step) + 1 <= PROMETHEUS_MAX_POINTS:
            return float(step)
    return float(math.ceil(span / (PROMETHEUS_MAX_POINTS - 1)))


def output_format(requested: str | None, output: Path | None) -> str:
    if requested:
        return requested
    return _SUFFIX_FORMATS.get(output.suffix.lower(), "html") if output else "html"


def argument(flag: str, parse: Callable[[str], _T], text: str) -> _T:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc), where=flag) from None


def check_writable(output: Path | None) -> None:
    """Refuse an output that cannot be written before fetching for it, not a minute after."""
    if output is None:
        return
    try:
        if os.path.isdir(output):
            raise ConfigError("cannot write: it is a directory", source=output)
        if os.path.lexists(output):
            os.stat(output)  # a directory we may not enter raises here
            writable = os.access(output, os.W_OK)
        else:
            writable = os.access(output.parent, os.W_OK | os.X_OK)
            if not writable and not output.parent.is_dir():
                raise ConfigError("cannot write: no such directory", source=output)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=output) from None
    if not writable:
        raise ConfigError("cannot write: Permission denied", source=output)


def write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=output) from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vpnwatch.report.cli``: the report command on its own."""
    parser = argparse.ArgumentParser(prog="vpnwatch")
    add_report_parser(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    return run_report(args)


if __name__ == "__main__":
    sys.exit(main())
