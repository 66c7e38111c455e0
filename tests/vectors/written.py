"""What every capture script ends with: the vector file, naming the servers it came from."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol


class Capture(Protocol):
    def to_json(self) -> Mapping[str, object]: ...


def debian_versions(*packages: str, separator: str = ", ") -> str:
    """``package version`` of each installed Debian package: the real servers a file holds."""
    return separator.join(f"{package} {_installed_version(package)}" for package in packages)


def _installed_version(package: str) -> str:
    query = ["dpkg-query", "-W", "-f", "${Version}", package]
    return subprocess.run(query, check=True, capture_output=True, text=True).stdout


def write_vectors(path: Path, about: str, server: str, captures: Sequence[Capture]) -> None:
    """Write ``captures`` to ``path`` with where they came from (``about``) and ``server``."""
    document = {"about": about, "server": server, "captures": [item.to_json() for item in captures]}
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {len(captures)} captures to {path}")
