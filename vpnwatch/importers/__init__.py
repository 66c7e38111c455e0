"""Importers: files users already hold → Target models.

The format is chosen by the file's suffix; see :data:`IMPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from vpnwatch.errors import ConfigError
from vpnwatch.importers.bridgeline import load_bridge_lines
from vpnwatch.importers.wgquick import load_wgquick
from vpnwatch.targets.base import TargetBase

Importer = Callable[[Path], Sequence[TargetBase]]

#: File suffix → importer.
IMPORTERS: dict[str, Importer] = {
    ".conf": load_wgquick,
    ".bridges": load_bridge_lines,
    ".txt": load_bridge_lines,  # as Tor Browser users and obfs4proxy save bridge lines
}


def load_file(path: Path) -> list[TargetBase]:
    """Import every target in one file, choosing the importer by the file's suffix."""
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        known = ", ".join(sorted(IMPORTERS))
        raise ConfigError(
            f"unknown file type {path.suffix or '(none)'!r}; vpnwatch reads {known}", source=path
        )
    if not path.is_file():
        raise ConfigError("no such file", source=path)
    return list(importer(path))
