"""Tor bridge lists and torrc snippets → obfs4 targets, and the other bridges listed as skipped.

Users copy bridge lines from bridges.torproject.org, Tor Browser or a torrc::

    UseBridges 1
    ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy
    Bridge obfs4 192.0.2.3:443 4352E58420E68F5E40BF7C74FADDCCD9D1349413 cert=… iat-mode=0
    Bridge snowflake 192.0.2.4:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=… fronts=…

A line is read as Tor reads it: ``[Bridge] [TRANSPORT] ADDRESS[:PORT] [FINGERPRINT] [k=v …]``,
where TRANSPORT is a C identifier, the port defaults to 443 and the address must be an IP
address (Tor resolves no names here). Every obfs4 bridge becomes a target; a bridge of any other
transport (snowflake, webtunnel, meek_lite, …) or a plain one without transport is valid for Tor
but not something vpnwatch speaks, so it is returned as :class:`Skipped`, and the file still
loads. The older ``node-id=… public-key=…`` pair (hexadecimal) is accepted in place of ``cert=``.

Two flavours of file, told apart by name and content:

- a **bridge list** (``.txt``, ``.bridges``: what Tor Browser's "provide a bridge" box takes):
  one bridge per line, ``Bridge`` optional;
- a **torrc** (named ``torrc…`` or ``….torrc``, or any file with a ``UseBridges`` or
  ``ClientTransportPlugin`` line): Tor options, of which ``Bridge`` lines are read and the others
  ignored; a bridge line without ``Bridge`` in front is an unknown option to Tor, which refuses
  the file, and so does vpnwatch.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.imported import Imported, Skipped
from vpnwatch.targets.base import format_endpoint, parse_endpoint
from vpnwatch.targets.obfs4 import Obfs4Target, decode_cert

log = logging.getLogger(__name__)

#: Tor's default bridge port when a line gives none.
DEFAULT_PORT = 443
#: Options only a torrc has: a file holding one is read as a torrc.
TORRC_ONLY_OPTIONS = frozenset({"usebridges", "clienttransportplugin"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Transports a bridge line may name that a bare torrc line beginning with would be mistaken for.
KNOWN_TRANSPORTS = frozenset(
    {"obfs2", "obfs3", "obfs4", "scramblesuit", "meek", "meek_lite", "snowflake", "webtunnel",
     "conjure", "dnstt"}
)  # fmt: skip


class _LineError(ValueError):
    """A problem on one line; the loader adds the file and line number."""


@dataclass(frozen=True)
class _BridgeLine:
    number: int
    #: The pluggable transport, or None for a plain ("vanilla") bridge.
    transport: str | None
    host: str
    port: int
    #: The fingerprint, if given, and the key=value arguments, in order.
    fingerprint: str | None
    arguments: dict[str, str]


def load_bridge_lines(path: Path, *, torrc: bool = False) -> Imported:
    """Every obfs4 bridge in ``path`` as a target, every other bridge as skipped.

    ``torrc`` reads the file as Tor options (also chosen by the file's content, see above).
    ConfigError naming the line for anything Tor itself would refuse.
    """
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
    lines = [
        (number, line)
        for number, raw in enumerate(text.splitlines(), start=1)
        if (line := raw.strip()) and not line.startswith("#")
    ]
    torrc = torrc or any(line.split()[0].lower() in TORRC_ONLY_OPTIONS for _, line in lines)
    bridges: list[_BridgeLine] = []
    for number, line in lines:
        try:
            words = _bridge_words(line, torrc=torrc)
            if words is not None:
                bridges.append(_parse_bridge(number, words))
        except _LineError as exc:
            raise ConfigError(str(exc), source=path, where=f"line {number}") from None
    if not bridges:
        raise ConfigError("no bridge lines found", source=path)
    skipped = [_skipped(path, bridge) for bridge in bridges if bridge.transport != "obfs4"]
    obfs4 = [bridge for bridge in bridges if bridge.transport == "obfs4"]
    return Imported(_targets(path, obfs4), skipped)


def _bridge_words(line: str, *, torrc: bool) -> list[str] | None:
    """The words of the bridge on ``line`` after any ``Bridge``; None for another torrc option."""
    words = line.split()
    if words[0].lower() == "bridge":
        if len(words) == 1:
            raise _LineError("Bridge needs a bridge line after it")
        return words[1:]
    if not torrc:
        return words
    if words[0].lower() in KNOWN_TRANSPORTS or not _IDENTIFIER.match(words[0]):
        raise _LineError(
            "in a torrc a bridge line starts with 'Bridge' (Tor refuses it as an unknown option)"
        )
    log.debug("ignoring the torrc option %s (not a bridge)", words[0])
    return None


def _parse_bridge(number: int, words: list[str]) -> _BridgeLine:
    transport: str | None = None
    if _IDENTIFIER.match(words[0]):
        transport, words = words[0], words[1:]
        if not words:
            raise _LineError(f"the {transport} bridge line has no address")
    try:
        host, port = parse_endpoint(words[0], DEFAULT_PORT)
        ipaddress.ip_address(host)
    except ValueError as exc:
        message = str(exc) if str(exc).startswith("has ") else "is not an IP address"
        raise _LineError(f"the bridge address {message} (Tor takes no host names here)") from None
    rest = words[1:]
    fingerprint = rest.pop(0) if rest and "=" not in rest[0] else None
    arguments: dict[str, str] = {}
    for argument in rest:
        key, sep, value = argument.partition("=")
        if not sep or not key:
            raise _LineError(f"expected key=value after the address, found {argument!r}")
        if key in arguments:
            raise _LineError(f"{key}= appears twice")
        arguments[key] = value
    if transport is None and arguments:
        raise _LineError("a bridge without a transport takes no key=value arguments")
    return _BridgeLine(number, transport, host, port, fingerprint, arguments)


def _skipped(path: Path, bridge: _BridgeLine) -> Skipped:
    where = f"line {bridge.number}"
    if bridge.transport is None:
        return Skipped(
            str(path),
            where,
            "plain bridge",
            "a Tor bridge without pluggable transport: vpnwatch does not speak Tor's own protocol",
        )
    return Skipped(
        str(path),
        where,
        f"{bridge.transport} bridge",
        f"vpnwatch does not speak the {bridge.transport} transport (only obfs4)",
    )


def _obfs4_fields(bridge: _BridgeLine) -> dict[str, object]:
    options = bridge.arguments
    fields: dict[str, object] = {}
    if bridge.fingerprint is not None:
        fields["fingerprint"] = bridge.fingerprint
    if "cert" in options:
        try:
            fields["node_id"], fields["public_key"] = decode_cert(options["cert"])
        except ValueError as exc:
            raise _LineError(str(exc)) from None
    elif "node-id" in options and "public-key" in options:
        try:
            fields["public_key"] = bytes.fromhex(options["public-key"])
        except ValueError:
            raise _LineError("public-key= is not hexadecimal") from None
        fields["node_id"] = options["node-id"]
    else:
        raise _LineError("missing cert= (or the older node-id= and public-key=)")
    iat_mode = options.get("iat-mode")
    if iat_mode is None:
        raise _LineError("missing iat-mode= (0, 1 or 2), which obfs4 clients require")
    if iat_mode not in ("0", "1", "2"):
        raise _LineError("iat-mode= must be 0, 1 or 2")
    fields["iat_mode"] = int(iat_mode)
    return fields


def _targets(path: Path, bridges: list[_BridgeLine]) -> list[Obfs4Target]:
    """Name the targets: the file's stem, or stem/host:port when the file holds several."""
    first_seen: dict[str, int] = {}
    targets = []
    for bridge in bridges:
        where = f"line {bridge.number}"
        endpoint = format_endpoint(bridge.host, bridge.port)
        if endpoint in first_seen:
            message = f"{endpoint} is already listed on line {first_seen[endpoint]}"
            raise ConfigError(message, source=path, where=where)
        first_seen[endpoint] = bridge.number
        name = path.stem if len(bridges) == 1 else f"{path.stem}/{endpoint}"
        try:
            fields = _obfs4_fields(bridge)
            targets.append(
                Obfs4Target.model_validate(
                    {"name": name, "host": bridge.host, "port": bridge.port, **fields}
                )
            )
        except _LineError as exc:
            raise ConfigError(str(exc), source=path, where=where) from None
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc), source=path, where=where) from None
    return targets
