"""Importers: files users already hold → Target models, and the entries they skip.

The format is chosen by the file's suffix (see :data:`IMPORTERS`), or by its name for a torrc
(``torrc``, ``torrc-bridges``), which has none of its own. Each importer module is imported only
when a file of its kind is read, so checking one wg-quick file does not pay for OpenVPN's
certificate handling.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpnwatch.errors import ConfigError
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.imported import Imported, Skipped
from vpnwatch.targets.base import TargetBase

__all__ = ["IMPORTERS", "ImportOptions", "Imported", "Skipped", "import_file", "load_file"]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the user said about imported files beyond the files themselves."""

    #: A two-line username/password file for ``.ovpn`` files that use ``auth-user-pass``, for
    #: ``.sswan`` EAP profiles and for the gateways of AnyConnect profiles, which hold none.
    auth_user_pass: Path | None = None


DEFAULT_OPTIONS = ImportOptions()

Importer = Callable[[Path, ImportOptions], Imported]


#: A swanctl.conf, unlike a wg-quick file, has a ``connections { … }`` section.
_SWANCTL = re.compile(r"^\s*connections\s*\{", re.MULTILINE)


def _conf(path: Path, _: ImportOptions) -> Imported:
    """``.conf`` is wg-quick's and strongSwan's (swanctl.conf): the content says which."""
    try:
        swanctl = _SWANCTL.search(read_text(path)) is not None
    except UnreadableFile:
        swanctl = False  # the importer reports it
    if swanctl:
        from vpnwatch.importers.swanctl import load_swanctl

        return load_swanctl(path)
    from vpnwatch.importers.wgquick import load_wgquick

    return Imported(load_wgquick(path))


def _ovpn(path: Path, options: ImportOptions) -> Imported:
    from vpnwatch.importers.ovpn import load_ovpn

    return Imported(load_ovpn(path, auth_user_pass=options.auth_user_pass))


def _sswan(path: Path, options: ImportOptions) -> Imported:
    from vpnwatch.importers.sswan import load_sswan

    return Imported(load_sswan(path, options.auth_user_pass))


def _bridge_lines(path: Path, _: ImportOptions) -> Imported:
    from vpnwatch.importers.bridgeline import load_bridge_lines

    return load_bridge_lines(path)


def _torrc(path: Path, _: ImportOptions) -> Imported:
    from vpnwatch.importers.bridgeline import load_bridge_lines

    return load_bridge_lines(path, torrc=True)


def _link_list(path: Path, _: ImportOptions) -> Imported:
    from vpnwatch.importers.links import load_link_list

    return load_link_list(path)


def _sip008(path: Path, _: ImportOptions) -> Imported:
    from vpnwatch.importers.links import load_sip008

    return load_sip008(path)


def _anyconnect_profile(path: Path, options: ImportOptions) -> Imported:
    from vpnwatch.importers.anyconnect import load_anyconnect_profile

    return load_anyconnect_profile(path, auth_user_pass=options.auth_user_pass)


#: File suffix → importer.
IMPORTERS: dict[str, Importer] = {
    ".conf": _conf,
    ".ovpn": _ovpn,
    ".sswan": _sswan,
    ".bridges": _bridge_lines,
    # Tor Browser users, and obfs4proxy itself, save bridge lines as .txt.
    ".txt": _bridge_lines,
    ".torrc": _torrc,
    # Proxy links (ss://, trojan://), plain or base64 as subscriptions serve them; SIP008 JSON.
    ".links": _link_list,
    ".sub": _link_list,
    ".json": _sip008,
    # AnyConnect client profiles, as gateways push them and administrators ship them.
    ".xml": _anyconnect_profile,
}


def is_torrc_name(path: Path) -> bool:
    """Whether the file is named as a torrc is: ``torrc``, ``torrc-bridges``, ``home.torrc``."""
    return path.name.lower().startswith("torrc") or path.suffix.lower() == ".torrc"


def _importer(path: Path) -> Importer:
    if is_torrc_name(path):
        return _torrc
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        known = ", ".join(sorted(IMPORTERS))
        raise ConfigError(
            f"unknown file type {path.suffix or '(none)'!r}; vpnwatch reads {known} and torrc",
            source=path,
        )
    return importer


def import_file(path: Path, options: ImportOptions = DEFAULT_OPTIONS) -> Imported:
    """Every target in one file and every entry it skipped, by the file's suffix or name."""
    importer = _importer(path)
    if not path.is_file():
        raise ConfigError("no such file", source=path)
    return importer(path, options)


def load_file(path: Path, options: ImportOptions = DEFAULT_OPTIONS) -> list[TargetBase]:
    """Only the targets of :func:`import_file`, for callers that show no skipped entries."""
    return list(import_file(path, options).targets)
