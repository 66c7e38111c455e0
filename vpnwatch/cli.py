"""The ``vpnwatch`` command: check, run, config check, and the subcommands other modules add.

Exit status: 0 all ok, 1 some probe failed, 2 bad usage or bad input, or ``run`` cannot start
(its listen address in use or not permitted): one line, no traceback;
3 nothing failed but some probe could not be carried out on this host (a local error: out of file
descriptors, a local firewall, a clock that went back), so the answer is incomplete.
The global options (``--log-format``, ``--log-level``, ``-v``) are accepted before the
subcommand and after it (``vpnwatch run --log-format json``), as the README writes them.
Shell completion for bash, zsh and fish is argcomplete's: ``vpnwatch completion SHELL``.

``vpnwatch --help`` should cost little more than argparse: what only a command needs (logging,
dataclasses, the configuration, the probes) is imported inside the functions that run it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpnwatch.defaults import DEFAULT_LISTEN
from vpnwatch.errors import ConfigError
from vpnwatch.exitcodes import EXIT_OK, EXIT_USAGE
from vpnwatch.printable import printable

if TYPE_CHECKING:
    from vpnwatch.config import Config
    from vpnwatch.jobs import Job
    from vpnwatch.monitor import Monitor
    from vpnwatch.shard import Shard

LOG_LEVELS = ("debug", "info", "warning", "error")
COMPLETION_SHELLS = ("bash", "zsh", "fish")


#: Commands whose arguments another module defines: (module, function, help). Their modules load
#: only when the command runs or the shell asks for completions, so that ``vpnwatch --help`` or
#: ``check`` pays for none of them (the lab alone costs a tenth of a second to import).
DELEGATED = {
    "report": (
        "vpnwatch.report.cli",
        "add_report_parser",
        "write a disruption report (HTML, PDF, Markdown, CSV, JSON) from Prometheus",
    ),
    "status": (
        "vpnwatch.status.cli",
        "add_status_parser",
        "write a public status page (HTML or PDF): each protocol at each site, 90 days",
    ),
    "lab": (
        "vpnwatch.lab.cli",
        "add_lab_parser",
        "act on a running lab (vpnwatch demo): stage a censor (root)",
    ),
    "stack": (
        "vpnwatch.stack.cli",
        "add_stack_parser",
        "the Prometheus, Alertmanager and Grafana stack shipped with vpnwatch",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    completing = "_ARGCOMPLETE" in os.environ
    parser = _parser(DELEGATED if completing else {word for word in argv if word in DELEGATED})
    if completing:
        import argcomplete

        argcomplete.autocomplete(parser)  # answers the shell and exits
    args = parser.parse_args(argv)
    from vpnwatch.logs import setup_logging

    setup_logging(args.log_format, "debug" if args.verbose else args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"vpnwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _parser(load: Collection[str] = DELEGATED) -> argparse.ArgumentParser:
    """The whole command line; of the delegated commands, only those in ``load`` in full."""
    parser = argparse.ArgumentParser(
        prog="vpnwatch", description="VPN and circumvention health monitor."
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    _add_global_arguments(parser, defaults=True)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="probe every target once and print the results")
    _add_target_arguments(check)
    check.add_argument("--json", action="store_true", help="one JSON object per line per target")
    check.add_argument(
        "--no-tunnel",
        dest="tunnel",
        action="store_false",
        help="handshakes only: do not test tunnels, even where the file says enough to",
    )
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
        "check",
        help="validate a configuration or files and list their targets and what they skip",
        description=(
            "A .yml/.yaml FILE is a vpnwatch configuration; any other is a file to import"
            " (wg-quick .conf, .ovpn, bridge list, torrc). Nothing is probed, no secret printed."
        ),
    )
    config_check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    config_check.add_argument(
        "--auth-user-pass",
        type=Path,
        metavar="FILE",
        help="two-line username/password file for .ovpn files that use auth-user-pass",
    )
    config_check.add_argument(
        "--json", action="store_true", help="one JSON object: targets and skipped entries"
    )
    config_check.set_defaults(func=_config_check)

    for name, (module, function, help_text) in DELEGATED.items():
        if name in load:
            getattr(importlib.import_module(module), function)(commands)
        else:  # a placeholder for the list of commands: never parsed, as main loads what it runs
            commands.add_parser(name, help=help_text, add_help=False)

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
        "--log-level", choices=LOG_LEVELS, default=default("info"), help="default info"
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


class _VersionAction(argparse.Action):
    """``--version``: the installed metadata is read only when it is asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from vpnwatch import __version__

        parser.exit(message=f"vpnwatch {__version__}\n")


def _completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    print(shellcode(["vpnwatch"], shell=args.shell), end="")
    return EXIT_OK


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="wg-quick .conf, .ovpn, Tor bridge-list (.txt, .bridges) or torrc files to probe",
    )
    parser.add_argument(
        "--auth-user-pass",
        type=Path,
        metavar="FILE",
        help="two-line username/password file for .ovpn files that use auth-user-pass"
        " and .sswan EAP profiles",
    )
    parser.add_argument("--config", type=Path, help="a vpnwatch YAML configuration")
    parser.add_argument("--timeout", type=float, help="seconds a probe may take")


def _load(args: argparse.Namespace) -> Config:
    from vpnwatch.config import load_config
    from vpnwatch.importers import ImportOptions

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
    import logging
    from dataclasses import replace

    jobs = tuple(shard.select(config.jobs, lambda job: job.name))
    logging.getLogger("vpnwatch").info(
        "shard %d/%d: %d of %d targets", shard.index, shard.count, len(jobs), len(config.jobs)
    )
    return replace(config, jobs=jobs)


def _shard(text: str) -> Shard:
    from vpnwatch.shard import Shard  # with --shard only: its hashlib would slow every --help

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check(args: argparse.Namespace) -> int:
    from vpnwatch.check import check_all

    return check_all(_load(args), as_json=args.json, tunnel=getattr(args, "tunnel", True))


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from vpnwatch.monitor import Monitor
    from vpnwatch.probes.registry import PROBES
    from vpnwatch.webconfig import load_web_config

    def load() -> Config:
        config = _load(args)
        for skipped in config.skipped:
            logging.getLogger("vpnwatch").info("not probing %s", skipped.describe())
        return config

    web_config = load_web_config(args.web_config) if args.web_config is not None else None
    monitor = Monitor(
        load,
        PROBES,
        enable_lifecycle=args.enable_lifecycle,
        enable_probe=args.enable_probe,
        web_config=web_config,
    )
    asyncio.run(_until_signalled(monitor))
    return EXIT_OK


async def _until_signalled(monitor: Monitor) -> None:
    """Run until SIGTERM or SIGINT, then cancel everything and return."""
    import asyncio
    import logging

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
    import tempfile

    from vpnwatch.lab.demo import demo_lab

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
    import json

    from vpnwatch.config import load_config
    from vpnwatch.importers import ImportOptions

    configs = [path for path in args.files if path.suffix.lower() in (".yml", ".yaml")]
    if len(configs) > 1:
        raise ConfigError("give at most one .yml configuration", where="command line")
    files = [path for path in args.files if path not in configs]
    options = ImportOptions(auth_user_pass=args.auth_user_pass)
    config = load_config(configs[0] if configs else None, files, options=options)
    if args.json:
        document = {
            "targets": [_target_record(job) for job in config.jobs],
            "skipped": [skipped.record() for skipped in config.skipped],
            "subscriptions": [
                {"subscription": state.name, "ok": state.ok, "error": state.error}
                for state in config.subscriptions
            ],
        }
        print(json.dumps(document, indent=1))
        return EXIT_OK
    for job in config.jobs:
        target = job.target
        labels = ",".join(f"{k}={v}" for k, v in sorted(target.labels.items()))
        line = (
            f"{target.name}  {target.protocol}  {target.transport}  {target.endpoint}  "
            f"every {job.interval:g}s  timeout {job.timeout:g}s  {target.role}  {labels}"
        )
        print(printable(line.rstrip()))
    for skipped in config.skipped:
        print(printable(f"skipped  {skipped.describe()}"))
    for state in config.subscriptions:
        print(printable(state.describe()))
    named = ", ".join(str(path) for path in args.files)
    also = f", {len(config.skipped)} skipped" if config.skipped else ""
    print(printable(f"{named}: {len(config.jobs)} targets{also}, ok"))
    return EXIT_OK


def _target_record(job: Job) -> dict[str, Any]:
    """What ``config check --json`` says of one target: where and how, never a secret."""
    target = job.target
    return {
        "target": target.name,
        "protocol": target.protocol,
        "endpoint": target.endpoint,
        "transport": target.transport,
        "interval_seconds": job.interval,
        "timeout_seconds": job.timeout,
        "role": target.role,
        "labels": dict(target.labels),
        "source": job.source,
    }


if __name__ == "__main__":
    sys.exit(main())
