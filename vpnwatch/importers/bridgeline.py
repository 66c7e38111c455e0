"""Tor bridge lines → obfs4 targets.

Users copy bridge lines from bridges.torproject.org, Tor Browser or a torrc::

    Bridge obfs4 192.0.2.3:443 4352E58420E68F5E40BF7C74FADDCCD9D1349413 cert=… iat-mode=0

The leading ``Bridge`` (torrc) is optional, IPv6 addresses are bracketed, the fingerprint may be
left out, and a file may hold several lines with ``#`` comments and blank lines between them. The
older ``node-id=… public-key=…`` pair (hexadecimal) is accepted in place of ``cert=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.targets.base import format_endpoint, parse_endpoint
from vpnwatch.targets.obfs4 import Obfs4Target, decode_cert


class _LineError(ValueError):
    """A problem on one line; the loader adds the file and line number."""


@dataclass(frozen=True)
class _BridgeLine:
    number: int
    host: str
    port: int
    fields: dict[str, object]


def load_bridge_lines(path: Path) -> list[Obfs4Target]:
    """Every obfs4 bridge in ``path``; ConfigError naming the line for anything malformed."""
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
    parsed: list[_BridgeLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parsed.append(_parse_line(number, line))
        except _LineError as exc:
            raise ConfigError(str(exc), source=path, where=f"line {number}") from None
    if not parsed:
        raise ConfigError("no bridge lines found", source=path)
    return _targets(path, parsed)


def _parse_line(number: int, line: str) -> _BridgeLine:
    words = line.split()
    if words[0].lower() == "bridge":
        words = words[1:]
    if not words or words[0] != "obfs4":
        found = f"{words[0]!r}" if words else "nothing"
        raise _LineError(f"expected an obfs4 bridge line, found {found} where 'obfs4' goes")
    if len(words) < 2:
        raise _LineError("the bridge line has no address")
    try:
        host, port = parse_endpoint(words[1])
    except ValueError as exc:
        raise _LineError(f"the address {exc}") from None
    fields: dict[str, object] = {}
    arguments = words[2:]
    if arguments and "=" not in arguments[0]:
        fields["fingerprint"] = arguments.pop(0)
    options: dict[str, str] = {}
    for argument in arguments:
        key, sep, value = argument.partition("=")
        if not sep or not key:
            raise _LineError(f"expected key=value after the address, found {argument!r}")
        if key in options:
            raise _LineError(f"{key}= appears twice")
        options[key] = value
    fields.update(_keys(options))
    iat_mode = options.get("iat-mode")
    if iat_mode is None:
        raise _LineError("missing iat-mode= (0, 1 or 2), which obfs4 clients require")
    if iat_mode not in ("0", "1", "2"):
        raise _LineError("iat-mode= must be 0, 1 or 2")
    fields["iat_mode"] = int(iat_mode)
    return _BridgeLine(number, host, port, fields)


def _keys(options: dict[str, str]) -> dict[str, object]:
    if "cert" in options:
        try:
            node_id, public_key = decode_cert(options["cert"])
        except ValueError as exc:
            raise _LineError(f"the address {exc}") from None
        return {"node_id": node_id, "public_key": public_key}
    if "node-id" in options and "public-key" in options:
        try:
            public_key = bytes.fromhex(options["public-key"])
        except ValueError:
            raise _LineError("public-key= is not hexadecimal") from None
        return {"node_id": options["node-id"], "public_key": public_key}
    raise _LineError("missing cert= (or the older node-id= and public-key=)")


def _targets(path: Path, parsed: list[_BridgeLine]) -> list[Obfs4Target]:
    """Name the targets: the file's stem, or stem/host:port when the file holds several."""
    first_seen: dict[str, int] = {}
    targets = []
    for bridge in parsed:
        where = f"line {bridge.number}"
        endpoint = format_endpoint(bridge.host, bridge.port)
        if endpoint in first_seen:
            message = f"{endpoint} is already listed on line {first_seen[endpoint]}"
            raise ConfigError(message, source=path, where=where)
        first_seen[endpoint] = bridge.number
        name = path.stem if len(parsed) == 1 else f"{path.stem}/{endpoint}"
        try:
            targets.append(
                Obfs4Target.model_validate(
                    {"name": name, "host": bridge.host, "port": bridge.port, **bridge.fields}
                )
            )
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc), source=path, where=where) from None
    return targets
