"""``vpnwatch report``: a disruption report from the monitor's metrics in Prometheus.

Exit status: 0 report written; 1 Prometheus unreachable, refusing the credentials, failing,
answering something that is not its API, or not done within ``--timeout``; 2 bad input
(arguments, a credential or certificate file, a selector matching nothing, a range without
data). Every error is one line on stderr, and none shows a credential.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from vpnwatch.errors import ConfigError
from vpnwatch.printable import printable
from vpnwatch.report.access import ENV_PASSWORD, ENV_TOKEN, AccessOptions, prometheus_access
from vpnwatch.report.dataset import NoDataError, load_dataset
from vpnwatch.report.incidents import Rules, analyse
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
from vpnwatch.report.selector import parse_selector
from vpnwatch.report.timespec import parse_duration, parse_time, parse_zone

EXIT_OK, EXIT_PROMETHEUS, EXIT_USAGE = 0, 1, 2
_T = TypeVar("_T")

RENDERERS: dict[str, Callable[[Report], str]] = {
    "html": render_html,
    "md": render_markdown,
    "csv": render_csv,
    "json": render_json,
}
_SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".csv": "csv", ".json": "json"}

#: Steps the automatic choice picks from. The finest is 5 minutes so that every interval holds
#: several probes at the usual 30-60 s probe interval: a ratio of one probe is only 0 or 1.
AUTO_STEPS = (300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the ``vpnwatch`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write a disruption report (HTML, Markdown, CSV, JSON) from Prometheus data",
        description=(
            "Find the periods in which each protocol's handshakes mostly failed, per site, tell"
            " blocking from a site's own outage using its control probes, and write the"
            " evidence. TIME is RFC 3339 (2024-03-10T14:00:00Z), a date or a date and time in"
            " --tz (2024-03-10, 2024-03-10T19:00), or now-DURATION (now-24h, now-7d)."
        ),
    )
    parser.add_argument(
        "--prometheus",
        required=True,
        metavar="URL",
        help="Prometheus base URL; http://user:password@host works, but see below",
    )
    _add_access_arguments(parser)
    parser.add_argument("--from", dest="start", default="now-24h", metavar="TIME")
    parser.add_argument("--to", dest="end", default="now", metavar="TIME")
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
        help="resolution (default: the finest of 5m, 10m, 15m, 30m, 1h, ... within 11,000 steps)",
    )
    parser.add_argument(
        "--timeout",
        default=f"{TOTAL_TIMEOUT:.0f}s",
        metavar="DURATION",
        help="give up when Prometheus has not answered every query within this (default 10m)",
    )
    parser.add_argument("--format", choices=sorted(RENDERERS), help="default: from -o, else html")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    parser.set_defaults(func=run_report)
    return parser


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
    try:
        report = build_report(args, now=time.time())
        text = RENDERERS[output_format(args.format, args.output)](report)
        _write(text, args.output)
    except (ConfigError, NoDataError) as exc:
        print(f"vpnwatch report: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except PrometheusError as exc:  # it may quote a selector or labels: escaped, one line
        print(f"vpnwatch report: {printable(str(exc))}", file=sys.stderr)
        return EXIT_PROMETHEUS
    return EXIT_OK


def build_report(args: argparse.Namespace, *, now: float) -> Report:
    """Validate the arguments, fetch the data and find the incidents."""
    zone = _argument("--tz", parse_zone, args.tz)
    start = _argument("--from", lambda text: parse_time(text, now=now, zone=zone), args.start)
    end = _argument("--to", lambda text: parse_time(text, now=now, zone=zone), args.end)
    if start > end:
        raise ConfigError("is after --to", where="--from")
    if start == end:
        raise ConfigError("empty range: --from equals --to", where="--from")
    selector = _argument("--match", parse_selector, args.match)
    try:
        rules = Rules(
            threshold=args.threshold,
            merge_gap=_argument("--merge-gap", parse_duration, args.merge_gap),
            min_duration=_argument("--min-duration", parse_duration, args.min_duration),
        )
    except ValueError as exc:
        raise ConfigError(str(exc), where="--threshold") from None
    step = _argument("--step", parse_duration, args.step) if args.step else auto_step(end - start)
    total_timeout = _argument("--timeout", parse_duration, args.timeout)
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
    dataset = load_dataset(client, Grid.covering(start, end, step), selector)
    return Report(
        prometheus=client.url,
        start=start,
        end=end,
        zone=zone,
        zone_name=args.tz,
        selector=str(selector),
        dataset=dataset,
        analysis=analyse(dataset, rules),
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


def _argument(flag: str, parse: Callable[[str], _T], text: str) -> _T:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc), where=flag) from None


def _write(text: str, output: Path | None) -> None:
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
