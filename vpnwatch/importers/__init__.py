"""Importers: files users already hold → Target models.

The format is chosen by the file's suffix; see :data:`IMPORTERS`. Each importer module is imported
only when a file of its kind is read, so checking one wg-quick file does not pay for OpenVPN's
certificate handling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpnwatch.errors import ConfigError
from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the user said about imported files beyond the files themselves."""

    #: A two-line username/password file for ``.ovpn`` files that use ``auth-user-pass``, and
    #: for the gateways of AnyConnect profiles (which hold no credentials).
    auth_user_pass: Path | None = None


DEFAULT_OPTIONS = ImportOptions()

Importer = Callable[[Path, ImportOptions], Sequence[TargetBase]]


def _wgquick(path: Path, _: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.wgquick import load_wgquick

    return load_wgquick(path)


def _ovpn(path: Path, options: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.ovpn import load_ovpn

    return load_ovpn(path, auth_user_pass=options.auth_user_pass)


def _bridge_lines(path: Path, _: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.bridgeline import load_bridge_lines

    return load_bridge_lines(path)


def _anyconnect_profile(path: Path, options: ImportOptions) -> Sequence[TargetBase]:
    from vpnwatch.importers.anyconnect import load_anyconnect_profile

    return load_anyconnect_profile(path, auth_user_pass=options.auth_user_pass)


#: File suffix → importer.
IMPORTERS: dict[str, Importer] = {
    ".conf": _wgquick,
    ".ovpn": _ovpn,
    ".bridges": _bridge_lines,
    # Tor Browser users, and obfs4proxy itself, save bridge lines as .txt.
    ".txt": _bridge_lines,
    # AnyConnect client profiles, as gateways push them and administrators ship them.
    ".xml": _anyconnect_profile,
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
