"""``vpnwatch stack write DIR``: put the stack shipped in the package into a directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vpnwatch.stack import write_stack


def add_stack_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``stack`` on the ``vpnwatch`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stack", help="the Prometheus, Alertmanager and Grafana stack shipped with vpnwatch"
    )
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    write = actions.add_parser(
        "write",
        help="write docker-compose.yml, the Prometheus rules, Alertmanager and Grafana files",
    )
    write.add_argument("directory", type=Path, metavar="DIR")
    write.add_argument("--force", action="store_true", help="overwrite files that exist")
    write.set_defaults(func=_write)
    return parser


def _write(args: argparse.Namespace) -> int:
    written = write_stack(args.directory, force=args.force)
    print(
        f"vpnwatch: wrote {len(written)} files to {args.directory}. Next:\n"
        f"  cd {args.directory} && cp .env.example .env   # set GRAFANA_ADMIN_PASSWORD\n"
        "  put vpnwatch.yml and the files it names in ./config, then: docker compose up -d"
    )
    return 0
