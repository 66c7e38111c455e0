"""Importers: files users already hold → Target models.

The format is chosen by the file's suffix; see :data:`IMPORTERS`. Each importer module is imported
only when a file of its kind is read, so checking one wg-quick file does not pay for OpenVPN's
certificate handling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpnwatch.errors import ConfigError
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the user said about imported files beyond the files themselves."""

    #: A two-line username/password file for ``.ovpn`` files that use ``auth-user-pass`` and
    #: ``.sswan`` EAP profiles, which never hold the password.
    auth_user_pass: Path | None = None


DEFAULT_OPTIONS = ImportOptions()

Importer = Callable[[Path, ImportOptions], Sequence[TargetBase]]


#: A swanctl.conf, unlike a wg-quick file, has a ``connections { … }`` section.
_SWANCTL = re.compile(r"^\s*connections\s*\{", re.MULTILINE)


def _conf(path: Path, _: ImportOptions) -> Sequence[TargetBase]:
    """``.conf`` is wg-quick's and strongSwan's (swanctl.conf): the content says which."""
    try:
        swanctl = _SWANCTL.search(read_text(path)) is not None
    except UnreadableFile:
        swanctl = False  # the importer reports it
    if swanctl:
        from vpnwatch.importers.swanctl import load_swanctl

        return load_swanctl(path)
    from vpnwatch.importers.wgquick import load_wgquick

    return load_wgquick(path)


def _ovpn(path: Path, options: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.ovpn import load_ovpn

    return load_ovpn(path, auth_user_pass=options.auth_user_pass)


def _sswan(path: Path, options: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.sswan import load_sswan

    return load_sswan(path, options.auth_user_pass)


def _bridge_lines(path: Path, _: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.bridgeline import load_bridge_lines

    return load_bridge_lines(path)


#: File suffix → importer.
IMPORTERS: dict[str, Importer] = {
    ".conf": _conf,
    ".ovpn": _ovpn,
    ".sswan": _sswan,
    ".bridges": _bridge_lines,
    # Tor Browser users, and obfs4proxy itself, save bridge lines as .txt.
    ".txt": _bridge_lines,
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
