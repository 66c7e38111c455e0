"""The ``vpnwatch`` command: check, run, config check, and the subcommands other modules add.

Exit status: 0 all ok, 1 some probe failed, 2 bad usage or bad input, or ``run`` cannot start
(its listen address in use or not permitted): one line, no traceback;
3 nothing failed but some probe could not be carried out on this host (a local error: out of file
descriptors, a local firewall, a clock that went back), so the answer is incomplete.
The global options (``--log-format``, ``--log-level``, ``-v``) are accepted before the
subcommand and after it (``vpnwatch run --log-format json``), as the README writes them.
Shell completion for bash, zsh and fish is argcomplete's: ``vpnwatch completion SHELL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import argcomplete
from argcomplete.shell_integration import shellcode

from vpnwatch import __version__
from vpnwatch.config import DEFAULT_LISTEN, Config, load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers import ImportOptions
from vpnwatch.lab.cli import add_lab_parser
from vpnwatch.lab.demo import demo_lab
from vpnwatch.limits import probe_capacity
from vpnwatch.logs import setup_logging
from vpnwatch.monitor import Monitor
from vpnwatch.printable import printable
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.records import error_record, result_record
from vpnwatch.report.cli import add_report_parser
from vpnwatch.result import LocalError, LocalReason, Result
from vpnwatch.shard import Shard
from vpnwatch.stack.cli import add_stack_parser
from vpnwatch.status.cli import add_status_parser
from vpnwatch.targets.base import TargetBase
from vpnwatch.webconfig import load_web_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCAL = 0, 1, 2, 3
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
COMPLETION_SHELLS = ("bash", "zsh", "fish")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argcomplete.autocomplete(parser)  # answers the shell and exits when it is asking; else nothing
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else LOG_LEVELS[args.log_level]
    setup_logging(args.log_format, level)
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
    _add_global_arguments(parser, defaults=True)
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
    run.add_argument(
        "--web.enable-probe",
        dest="enable_probe",
        action="store_true",
        help="serve GET /probe?target=NAME: probe one configured target now (off by default)",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config",
        type=Path,
        metavar="FILE",
        help="TLS and basic auth for the endpoints, in the Prometheus exporter-toolkit format",
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
        func=_demo,
        files=[],
        timeout=None,
        shard=None,
        enable_lifecycle=True,
        enable_probe=True,
        web_config=None,
        auth_user_pass=None,
    )

    config = commands.add_parser("config", help="work with configuration files")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    config_check = config_commands.add_parser(
        "check", help="validate a configuration and list its targets (no secrets)"
    )
    config_check.add_argument("config", type=Path, metavar="FILE")
    config_check.set_defaults(func=_config_check)

    add_report_parser(commands)
    add_status_parser(commands)
    add_lab_parser(commands)
    add_stack_parser(commands)

    completion = commands.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description=(
            "bash: vpnwatch completion bash > /etc/bash_completion.d/vpnwatch;"
            ' zsh: vpnwatch completion zsh > "${fpath[1]}/_vpnwatch";'
            " fish: vpnwatch completion fish > ~/.config/fish/completions/vpnwatch.fish"
        ),
    )
    completion.add_argument("shell", choices=COMPLETION_SHELLS)
    completion.set_defaults(func=_completion)

    for subcommand in _subparsers(parser):
        _add_global_arguments(subcommand, defaults=False)
    return parser


def _add_global_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of every command. After the subcommand they default to SUPPRESS, so that
    one given before it is not reset by the subcommand's own (absent) copy."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--log-format", choices=("text", "json"), default=default("text"), help="default text"
    )
    parser.add_argument(
        "--log-level", choices=tuple(LOG_LEVELS), default=default("info"), help="default info"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log debug lines too (--log-level debug)",
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, at any depth (``config check``, ``lab censor dpi``)."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children = {id(child): child for child in action.choices.values()}  # aliases
            for child in children.values():
                found += [child, *_subparsers(child)]
    return found


def _completion(args: argparse.Namespace) -> int:
    print(shellcode(["vpnwatch"], shell=args.shell), end="")
    return EXIT_OK


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
    targets = [(job.target, job.timeout) for job in config.jobs]
    output = _JsonOutput() if args.json else _TableOutput(targets)
    concurrency = probe_capacity(config.settings.concurrency)
    tally = asyncio.run(_probe_all(targets, concurrency, output))
    print(
        f"vpnwatch: {len(targets)} targets: {tally['ok']} ok, {tally['failed']} failed"
        + (f", {tally['error']} could not be probed here" if tally["error"] else ""),
        file=sys.stderr,
    )
    if tally["failed"]:
        return EXIT_FAILED
    return EXIT_LOCAL if tally["error"] else EXIT_OK


Outcome = Result | LocalError


async def _probe_all(
    targets: Sequence[tuple[TargetBase, float]], concurrency: int, output: _Output
) -> Counter[str]:
    """Probe every target, at most ``concurrency`` at once, printing each as it ends."""
    limit = asyncio.Semaphore(concurrency)
    tally: Counter[str] = Counter({"ok": 0, "failed": 0, "error": 0})

    async def probe(target: TargetBase, timeout: float) -> None:
        async with limit:
            try:
                outcome: Outcome = await run_probe(PROBES[target.protocol], target, timeout)
            except LocalError as exc:
                outcome = exc
            except Exception as exc:  # a bug in vpnwatch: say so, keep probing the others
                logging.getLogger("vpnwatch").error(
                    "probe of %s raised (a bug in vpnwatch)", target.name, exc_info=exc
                )
                outcome = LocalError(LocalReason.INTERNAL, "the probe raised (a bug in vpnwatch)")
        tally["error" if isinstance(outcome, LocalError) else "ok" if outcome.ok else "failed"] += 1
        output.show(target, outcome)

    async with asyncio.TaskGroup() as group:
        for target, timeout in targets:
            group.create_task(probe(target, timeout))
    return tally


class _Output(Protocol):
    def show(self, target: TargetBase, outcome: Outcome) -> None: ...


class _JsonOutput:
    """One JSON object per line, as each probe ends."""

    def show(self, target: TargetBase, outcome: Outcome) -> None:
        record = (
            error_record(target, outcome)
            if isinstance(outcome, LocalError)
            else result_record(target, outcome)
        )
        print(json.dumps(record), flush=True)


class _TableOutput:
    """A table whose rows appear as probes end; columns sized from the targets up front.

    Names, endpoints and details come from configs and peers: every cell and detail is shown
    through :func:`printable`, and the widths are those of the escaped text.
    """

    _HEADER = ("TARGET", "PROTOCOL", "ENDPOINT", "RESULT", "FAILURE", "STAGE", "TIME")
    #: Widest values of the columns that depend on the outcome, not the target.
    _OUTCOME_WIDTHS = (6, 16, 9, 10)

    def __init__(self, targets: Sequence[tuple[TargetBase, float]]) -> None:
        self._widths = [
            max([len(header), *(len(printable(value)) for value in values)])
            for header, values in zip(
                self._HEADER,
                (
                    [t.name for t, _ in targets],
                    [t.protocol for t, _ in targets],
                    [t.endpoint for t, _ in targets],
                ),
                strict=False,
            )
        ]
        self._widths += [
            max(len(header), width)
            for header, width in zip(self._HEADER[3:], self._OUTCOME_WIDTHS, strict=False)
        ]
        self._print(self._HEADER)

    def show(self, target: TargetBase, outcome: Outcome) -> None:
        if isinstance(outcome, LocalError):
            row = (target.name, target.protocol, target.endpoint, "ERROR", str(outcome.reason))
            self._print((*row, "-", "-"))
            print(
                printable(f"  {target.name}: could not be probed here: {outcome.detail}"),
                flush=True,
            )
            return
        failure = str(outcome.failure or "-")
        result = "ok" if outcome.ok else "FAILED"
        stage, took = outcome.stage or "-", f"{outcome.duration * 1000:.1f} ms"
        self._print((target.name, target.protocol, target.endpoint, result, failure, stage, took))
        if outcome.detail and not outcome.ok:
            print(printable(f"  {target.name}: {outcome.detail}"), flush=True)

    def _print(self, row: Sequence[str]) -> None:
        cells = (
            printable(cell).ljust(width) for cell, width in zip(row, self._widths, strict=False)
        )
        print("  ".join(cells).rstrip(), flush=True)


def _run(args: argparse.Namespace) -> int:
    web_config = load_web_config(args.web_config) if args.web_config is not None else None
    monitor = Monitor(
        lambda: _load(args),
        PROBES,
        enable_lifecycle=args.enable_lifecycle,
        enable_probe=args.enable_probe,
        web_config=web_config,
    )
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
