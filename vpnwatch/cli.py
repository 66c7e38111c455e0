"""The ``vpnwatch`` command: check, run, config check, and the subcommands other modules add.

Exit status: 0 all ok, 1 some probe failed, 2 bad usage or bad input, or ``run`` cannot start
(its listen address in use or not permitted): one line, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vpnwatch import __version__
from vpnwatch.config import DEFAULT_LISTEN, Config, load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers import ImportOptions
from vpnwatch.lab.cli import add_lab_parser
from vpnwatch.lab.demo import demo_lab
from vpnwatch.logs import setup_logging
from vpnwatch.monitor import Monitor
from vpnwatch.printable import printable
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.records import result_record
from vpnwatch.report.cli import add_report_parser
from vpnwatch.result import Result
from vpnwatch.shard import Shard
from vpnwatch.targets.base import TargetBase

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"vpnwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpnwatch", description="VPN and circumvention health monitor."
    )
    parser.add_argument("--version", action="version", version=f"vpnwatch {__version__}")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines too")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="probe every target once and print the results")
    _add_target_arguments(check)
    check.add_argument("--json", action="store_true", help="one JSON object per line per target")
    check.set_defaults(func=_check)

    run = commands.add_parser("run", help="probe targets on their schedule and serve /metrics")
    _add_target_arguments(run)
    run.add_argument("--listen", help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})")
    run.add_argument("--interval", type=float, help="default seconds between probes of a target")
    run.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N",
        help="probe only shard K of N: N monitors with the same targets split them evenly",
    )
    run.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="allow POST /-/reload (off by default, as in Prometheus)",
    )
    run.set_defaults(func=_run)

    demo = commands.add_parser(
        "demo", help="start the lab's real VPN servers in a namespace and monitor them (root)"
    )
    demo.add_argument("--listen", default="127.0.0.1:10877", help="HOST:PORT to serve on")
    demo.add_argument("--interval", type=float, default=10.0, help="seconds between probes")
    demo.add_argument("--once", action="store_true", help="probe every lab target once and exit")
    demo.add_argument("--json", action="store_true", help="with --once: JSON lines")
    demo.set_defaults(
        func=_demo, files=[], timeout=None, shard=None, enable_lifecycle=True, auth_user_pass=None
    )

    config = commands.add_parser("config", help="work with configuration files")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    config_check = config_commands.add_parser(
        "check", help="validate a configuration and list its targets (no secrets)"
    )
    config_check.add_argument("config", type=Path, metavar="FILE")
    config_check.set_defaults(func=_config_check)

    add_report_parser(commands)
    add_lab_parser(commands)
    return parser


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="wg-quick .conf, .ovpn or bridge-line (.txt, .bridges) files to probe",
    )
    parser.add_argument(
        "--auth-user-pass",
        type=Path,
        metavar="FILE",
        help="two-line username/password file for .ovpn files that use auth-user-pass",
    )
    parser.add_argument("--config", type=Path, help="a vpnwatch YAML configuration")
    parser.add_argument("--timeout", type=float, help="seconds a probe may take")


def _load(args: argparse.Namespace) -> Config:
    if args.config is None and not args.files:
        raise ConfigError("give a --config file, or files to probe (see --help)")
    overrides: dict[str, Any] = {
        key: value
        for key in ("listen", "interval", "timeout")
        if (value := getattr(args, key, None)) is not None
    }
    if "timeout" in overrides and "interval" not in overrides and args.config is None:
        # Plain files have no interval of their own; a long --timeout must not be refused for it.
        overrides["interval"] = max(overrides["timeout"], 60.0)
    options = ImportOptions(auth_user_pass=args.auth_user_pass)
    config = load_config(args.config, args.files, overrides=overrides, options=options)
    shard: Shard | None = getattr(args, "shard", None)
    if shard is None:
        return config
    jobs = tuple(shard.select(config.jobs, lambda job: job.name))
    logging.getLogger("vpnwatch").info(
        "shard %d/%d: %d of %d targets", shard.index, shard.count, len(jobs), len(config.jobs)
    )
    return replace(config, jobs=jobs)


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check(args: argparse.Namespace) -> int:
    config = _load(args)
    probed = asyncio.run(_probe_all([(job.target, job.timeout) for job in config.jobs]))
    results = [(target, result) for target, result in probed if result is not None]
    if args.json:
        for target, result in results:
            print(json.dumps(result_record(target, result)), flush=True)
    else:
        _print_table(results)
    return EXIT_OK if all(result is not None and result.ok for _, result in probed) else EXIT_FAILED


async def _probe_all(
    targets: Sequence[tuple[TargetBase, float]],
) -> list[tuple[TargetBase, Result | None]]:
    """Probe every target at once; a probe that raised (a bug in vpnwatch) gives None."""
    outcomes = await asyncio.gather(
        *(run_probe(PROBES[target.protocol], target, timeout) for target, timeout in targets),
        return_exceptions=True,
    )
    probed: list[tuple[TargetBase, Result | None]] = []
    for (target, _), outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            logging.getLogger("vpnwatch").error(
                "probe of %s raised (a bug in vpnwatch)", target.name, exc_info=outcome
            )
            probed.append((target, None))
        else:
            probed.append((target, outcome))
    return probed


def _print_table(results: Sequence[tuple[TargetBase, Result]]) -> None:
    rows = [("TARGET", "PROTOCOL", "ENDPOINT", "RESULT", "FAILURE", "STAGE", "TIME")]
    for target, result in results:
        rows.append(
            (
                target.name,
                target.protocol,
                target.endpoint,
                "ok" if result.ok else "FAILED",
                str(result.failure or "-"),
                result.stage or "-",
                f"{result.duration * 1000:.1f} ms",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for target, result in results:
        if result.detail and not result.ok:
            print(f"{target.name}: {result.detail}")


def _run(args: argparse.Namespace) -> int:
    monitor = Monitor(lambda: _load(args), PROBES, enable_lifecycle=args.enable_lifecycle)
    asyncio.run(_until_signalled(monitor))
    return EXIT_OK


async def _until_signalled(monitor: Monitor) -> None:
    """Run until SIGTERM or SIGINT, then cancel everything and return."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await monitor.run()
    except asyncio.CancelledError:
        logging.getLogger("vpnwatch").info("stopped")


def _demo(args: argparse.Namespace) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="vpnwatch-demo-") as directory,
        demo_lab(Path(directory), interval=args.interval) as config,
    ):
        args.config = config
        if args.once:
            return _check(args)
        print(
            f"vpnwatch demo: the lab's config is {config}\n"
            f"  metrics:  curl http://{args.listen}/metrics\n"
            f"  targets:  curl http://{args.listen}/api/targets\n"
            "  Ctrl-C stops the monitor and removes the lab.",
            flush=True,
        )
        return _run(args)


def _config_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for job in config.jobs:
        target = job.target
        labels = ",".join(f"{k}={v}" for k, v in sorted(target.labels.items()))
        line = (
            f"{target.name}  {target.protocol}  {target.transport}  {target.endpoint}  "
            f"every {job.interval:g}s  timeout {job.timeout:g}s  {target.role}  {labels}"
        )
        print(printable(line.rstrip()))
    print(printable(f"{args.config}: {len(config.jobs)} targets, ok"))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
