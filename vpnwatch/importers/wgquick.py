"""wg-quick ``.conf`` files → WireGuard targets.

wg-quick files are INI-like but not INI: ``[Peer]`` repeats, keys are case-insensitive, and ``#``
starts a comment anywhere on a line. Each ``[Peer]`` with an ``Endpoint`` becomes one target; peers
without one (a server's own clients) cannot be probed and are skipped. A key neither ``wg`` nor
wg-quick knows in its section makes ``wg-quick up`` fail, so it is refused here too: a file the
real client refuses must not be reported as working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.targets.base import decode_key32, format_endpoint, parse_endpoint
from vpnwatch.targets.wireguard import WireGuardTarget

#: The keys each section may hold: ``wg setconf``'s own, plus those wg-quick strips from
#: [Interface] before handing the rest to ``wg`` (lower case: both match them without case).
_KEYS = {
    "interface": frozenset(
        {"privatekey", "listenport", "fwmark", "address", "dns", "mtu", "table", "preup",
         "postup", "predown", "postdown", "saveconfig"}
    ),
    "peer": frozenset(
        {"publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"}
    ),
}  # fmt: skip


@dataclass
class _Section:
    kind: str
    line: int
    values: dict[str, tuple[int, str]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[int, str] | None:
        return self.values.get(key.lower())


def _sections(path: Path, text: str) -> list[_Section]:
    sections: list[_Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            kind = line[1:-1].strip().lower()
            if kind not in _KEYS:
                raise ConfigError(f"unknown section [{kind}]", source=path, where=f"line {number}")
            sections.append(_Section(kind, number))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(
                "expected 'Key = Value' or a [Section]", source=path, where=f"line {number}"
            )
        if not sections:
            raise ConfigError(
                f"{key.strip()} appears before any [Section]", source=path, where=f"line {number}"
            )
        section, name = sections[-1], key.strip().lower()
        if name not in _KEYS[section.kind]:
            raise ConfigError(
                f"{key.strip()} is not a key of [{section.kind.capitalize()}]"
                " (wg-quick refuses the file)",
                source=path,
                where=f"line {number}",
            )
        section.values[name] = (number, value.strip())
    return sections


def _key(path: Path, section: _Section, name: str, *, required: bool) -> bytes | None:
    entry = section.get(name)
    where = f"[{section.kind.capitalize()}] {name}"
    if entry is None:
        if required:
            raise ConfigError(
                f"missing {name}",
                source=path,
                where=f"line {section.line}: [{section.kind.capitalize()}]",
            )
        return None
    number, value = entry
    try:
        return decode_key32(value)
    except ValueError as exc:
        raise ConfigError(str(exc), source=path, where=f"line {number}: {where}") from None


def load_wgquick(path: Path) -> list[WireGuardTarget]:
    """Read a wg-quick file: one target per ``[Peer]`` that has an ``Endpoint``."""
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
    sections = _sections(path, text)
    interfaces = [s for s in sections if s.kind == "interface"]
    if len(interfaces) != 1:
        raise ConfigError(f"expected one [Interface] section, found {len(interfaces)}", source=path)
    private_key = _key(path, interfaces[0], "PrivateKey", required=True)
    peers: list[tuple[_Section, str, int]] = []
    for section in sections:
        entry = section.get("Endpoint") if section.kind == "peer" else None
        if entry is not None:
            try:
                host, port = parse_endpoint(entry[1])
            except ValueError as exc:
                raise ConfigError(
                    str(exc), source=path, where=f"line {entry[0]}: [Peer] Endpoint"
                ) from None
            peers.append((section, host, port))
    if not peers:
        raise ConfigError("no [Peer] has an Endpoint: nothing to probe", source=path)
    targets = []
    for section, host, port in peers:
        public_key = _key(path, section, "PublicKey", required=True)
        preshared_key = _key(path, section, "PresharedKey", required=False)
        name = path.stem if len(peers) == 1 else f"{path.stem}/{format_endpoint(host, port)}"
        try:
            targets.append(
                WireGuardTarget(
                    name=name,
                    host=host,
                    port=port,
                    private_key=private_key,
                    public_key=public_key,
                    preshared_key=preshared_key,
                )
            )
        except ValidationError as exc:
            raise ConfigError(
                describe_validation_error(exc), source=path, where=f"line {section.line}: [Peer]"
            ) from None
    return targets
