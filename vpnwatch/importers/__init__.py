"""Importers: files users already hold → Target models.

The format is chosen by the file's suffix; see :data:`IMPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpnwatch.errors import ConfigError
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.bridgeline import load_bridge_lines
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.importers.sswan import load_sswan
from vpnwatch.importers.swanctl import is_swanctl, load_swanctl
from vpnwatch.importers.wgquick import load_wgquick
from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the user said about imported files beyond the files themselves."""

    #: A two-line username/password file for ``.ovpn`` files that use ``auth-user-pass`` and
    #: ``.sswan`` EAP profiles, which never hold the password.
    auth_user_pass: Path | None = None


DEFAULT_OPTIONS = ImportOptions()

Importer = Callable[[Path, ImportOptions], Sequence[TargetBase]]


def _load_conf(path: Path, options: ImportOptions) -> Sequence[TargetBase]:
    """``.conf`` is wg-quick's and strongSwan's (swanctl.conf): the content says which."""
    try:
        swanctl = is_swanctl(read_text(path))
    except UnreadableFile:
        swanctl = False  # the importer reports it
    return load_swanctl(path) if swanctl else load_wgquick(path)


#: File suffix → importer.
IMPORTERS: dict[str, Importer] = {
    ".conf": _load_conf,
    ".ovpn": lambda path, options: load_ovpn(path, auth_user_pass=options.auth_user_pass),
    ".sswan": lambda path, options: load_sswan(path, options.auth_user_pass),
    ".bridges": lambda path, _: load_bridge_lines(path),
    # Tor Browser users, and obfs4proxy itself, save bridge lines as .txt.
    ".txt": lambda path, _: load_bridge_lines(path),
}


def load_file(path: Path, options: ImportOptions = DEFAULT_OPTIONS) -> list[TargetBase]:
    """Import every target in one file, choosing the importer by the file's suffix."""
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        known = ", ".join(sorted(IMPORTERS))
        raise ConfigError(
            f"unknown file type {path.suffix or '(none)'!r}; vpnwatch reads {known}", source=path
        )
    if not path.is_file():
        raise ConfigError("no such file", source=path)
    return list(importer(path, options))
