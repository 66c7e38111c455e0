"""Proxy links and the lists they come in → Shadowsocks and Trojan targets.

Providers hand out proxies as links, one per line, often base64-encoded as a whole (a
"subscription"), or as a SIP008 JSON document:

- ``ss://`` (SIP002): ``ss://BASE64URL(method:password)@host:port/?plugin=…#name``, or the
  userinfo percent-encoded in clear (``method:password``); the older form that encodes
  ``method:password@host:port`` whole is read too. ``plugin`` is SIP003's
  ``name;opt=value;…``.
- ``trojan://password@host:port?sni=…#name``.
- SIP008: ``{"version": 1, "servers": [{"server", "server_port", "method", "password",
  "plugin", "plugin_opts", "remarks"}]}``.

Links of schemes vpnwatch does not speak (``vmess://``, ``vless://``, ``hysteria2://``, …), and
well-formed links asking for what it does not speak (a stream cipher or Shadowsocks 2022, a
plugin other than simple-obfs and v2ray-plugin's WebSocket, Trojan over WebSocket or gRPC), are
listed as skipped, never fatal: one old server must not stop a provider's list from being
monitored. A malformed link of a scheme it speaks is an error naming its line, and never repeats
the link, which holds a password.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.imported import Imported, Skipped
from vpnwatch.printable import is_printable_name
from vpnwatch.targets.base import TargetBase, format_endpoint
from vpnwatch.targets.shadowsocks import Method, ShadowsocksTarget, plugin_mode
from vpnwatch.targets.trojan import TrojanTarget

#: Schemes of proxies vpnwatch cannot probe yet: listed as skipped.
UNSUPPORTED = frozenset(
    {"vmess", "vless", "hysteria", "hysteria2", "hy2", "tuic", "ssr", "socks", "http", "https",
     "wireguard", "anytls", "naive+https"}
)  # fmt: skip


#: Shadowsocks methods links name that the probe does not speak: the stream ciphers (deprecated),
#: the AEAD ones nobody deploys, and Shadowsocks 2022.
OTHER_METHODS = frozenset(
    {"rc4-md5", "aes-128-cfb", "aes-192-cfb", "aes-256-cfb", "aes-128-ctr", "aes-192-ctr",
     "aes-256-ctr", "camellia-128-cfb", "camellia-192-cfb", "camellia-256-cfb", "bf-cfb",
     "salsa20", "chacha20", "chacha20-ietf", "aes-192-gcm", "xchacha20-ietf-poly1305",
     "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305",
     "none", "plain", "table"}
)  # fmt: skip
#: SIP003 plugins links name, for saying which one a skipped link asked for.
KNOWN_PLUGINS = frozenset(
    {"obfs-local", "simple-obfs", "v2ray-plugin", "ss-v2ray-plugin", "xray-plugin", "kcptun",
     "gost-plugin", "ck-client", "cloak", "shadow-tls", "qtun", "mos-tls-tunnel"}
)  # fmt: skip


class LinkError(ValueError):
    """A link of a scheme vpnwatch speaks that it cannot read: the message never repeats it."""


class Unspoken(ValueError):
    """A well-formed link asking for what vpnwatch does not speak (a stream cipher, a plugin,
    a transport): listed as skipped, like a link of another scheme. ``kind`` names it."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Entry:
    where: str
    protocol: str
    fields: dict[str, Any]
    tag: str


def load_link_list(path: Path) -> Imported:
    """A file of links, plain or base64 as a whole."""
    return parse_link_list(_read(path), str(path), path.stem)


def load_sip008(path: Path) -> Imported:
    """A SIP008 JSON document of Shadowsocks servers."""
    return parse_sip008(_read(path), str(path), path.stem)


def parse_link_list(text: str, source: str, stem: str) -> Imported:
    """Targets and skipped entries of a subscription's text, naming lines after ``source``."""
    lines = _decoded(text).splitlines()
    entries: list[_Entry] = []
    skipped: list[Skipped] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        scheme = line.partition("://")[0].lower() if "://" in line else ""
        if scheme in ("ss", "trojan"):
            try:
                protocol, fields, tag = parse_link(line)
                _check_spoken(protocol, fields)
            except LinkError as exc:
                raise ConfigError(f"{scheme}:// link: {exc}", source=source, where=where) from None
            except Unspoken as exc:
                skipped.append(Skipped(source, where, f"{scheme}:// link ({exc.kind})", exc.reason))
                continue
            entries.append(_Entry(where, protocol, fields, tag))
        elif scheme in UNSUPPORTED:
            reason = f"vpnwatch does not speak {scheme} yet"
            skipped.append(Skipped(source, where, f"{scheme}:// link", reason))
        else:
            kind = f"{scheme}:// link" if scheme.isalnum() else "a line that is not a link"
            raise ConfigError(
                f"{kind}: expected ss:// or trojan:// links", source=source, where=where
            )
    if not entries and not skipped:
        raise ConfigError("no links found", source=source)
    return Imported(_targets(entries, source, stem), tuple(skipped))


def parse_sip008(text: str, source: str, stem: str) -> Imported:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ConfigError("not a JSON document (SIP008)", source=source) from None
    servers = document.get("servers") if isinstance(document, dict) else None
    if not isinstance(servers, list):
        raise ConfigError('a SIP008 document needs a "servers" list', source=source)
    entries = []
    for index, server in enumerate(servers):
        where = f"servers[{index}]"
        if not isinstance(server, dict):
            raise ConfigError("must be an object", source=source, where=where)
        fields = {
            "host": server.get("server"),
            "port": server.get("server_port"),
            "method": server.get("method"),
            "password": server.get("password"),
            "plugin": server.get("plugin") or "",
            "plugin_opts": server.get("plugin_opts") or "",
        }
        present = {key: value for key, value in fields.items() if value is not None}
        entries.append(_Entry(where, "shadowsocks", present, str(server.get("remarks") or "")))
    if not entries:
        raise ConfigError("no servers", source=source)
    return Imported(_targets(entries, source, stem))


def parse_link(link: str) -> tuple[str, dict[str, Any], str]:
    """(protocol, target fields, the link's own name) of one ``ss://`` or ``trojan://`` link."""
    scheme = link.partition("://")[0].lower()
    return _parse_trojan(link) if scheme == "trojan" else _parse_ss(link)


def _parse_ss(link: str) -> tuple[str, dict[str, Any], str]:
    body, _, fragment = link[len("ss://") :].partition("#")
    if "@" not in body:  # the legacy form: base64 of method:password@host:port
        decoded = _b64(body.partition("?")[0].rstrip("/"), "the link")
        userinfo, sep, address = decoded.rpartition("@")
        if not sep:
            raise LinkError("has neither userinfo@host:port nor a base64 of it")
        parts = _split(f"ss://x@{address}")
    else:
        parts = _split(f"ss://{body}")
        raw = parts.username or ""
        if parts.password is not None:  # method:password written in clear
            userinfo = f"{unquote(raw)}:{unquote(parts.password)}"
        else:
            userinfo = _b64(unquote(raw), "the userinfo")
    method, sep, password = userinfo.partition(":")
    if not sep:
        raise LinkError("the userinfo is not method:password")
    host, port = _address(parts)
    plugin, _, opts = parse_qs(parts.query).get("plugin", [""])[0].partition(";")
    fields = {
        "host": host,
        "port": port,
        "method": method.lower(),
        "password": password,
        "plugin": plugin,
        "plugin_opts": opts,
    }
    return "shadowsocks", fields, unquote(fragment)


def _check_spoken(protocol: str, fields: dict[str, Any]) -> None:
    """Raise Unspoken for a Shadowsocks cipher or plugin the probe cannot speak."""
    if protocol != "shadowsocks":
        return
    if fields["method"] not in get_args(Method):
        reason = f"vpnwatch speaks the AEAD ciphers {', '.join(get_args(Method))}"
        method = str(fields["method"])
        # Only a known name is shown: anything else in its place may be a misplaced password.
        raise Unspoken(method if method in OTHER_METHODS else "an unknown cipher", reason)
    try:
        plugin_mode(fields["plugin"], fields["plugin_opts"])
    except ValueError as exc:
        plugin = str(fields["plugin"])
        shown = plugin if plugin in KNOWN_PLUGINS else "unknown"
        raise Unspoken(f"plugin {shown}", str(exc)) from None


def _parse_trojan(link: str) -> tuple[str, dict[str, Any], str]:
    parts = _split(link)
    if not parts.username:
        raise LinkError("has no password before '@'")
    host, port = _address(parts)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    if query.get("type", "tcp") != "tcp":
        raise Unspoken(f"type={query['type']}", "vpnwatch speaks Trojan over plain TLS (type=tcp)")
    if query.get("security", "tls") != "tls":
        raise Unspoken(
            f"security={query['security']}", "vpnwatch speaks Trojan over TLS (security=tls)"
        )
    fields: dict[str, Any] = {"host": host, "port": port, "password": unquote(parts.username)}
    if sni := query.get("sni") or query.get("peer"):
        fields["server_name"] = sni
    return "trojan", fields, unquote(parts.fragment)


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # an unclosed "[", or brackets around what is not an IPv6 address
        raise LinkError("is not a well-formed link (host:port)") from None


def _address(parts: SplitResult) -> tuple[str, int]:
    try:
        port = parts.port
    except ValueError:
        raise LinkError("has a port that is not a number from 1 to 65535") from None
    hostname = parts.hostname
    if not hostname or port is None:
        raise LinkError("needs host:port after '@'")
    return hostname, int(port)


def _b64(text: str, what: str) -> str:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise LinkError(f"{what} is neither method:password nor its base64") from None


def _decoded(text: str) -> str:
    """The list itself: subscriptions are often the base64 of the whole list."""
    compact = "".join(text.split())
    if "://" in text or not compact:
        return text
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=False).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return text


def _targets(entries: Iterable[_Entry], source: str, stem: str) -> list[TargetBase]:
    """Name each target by its link's own name when that is usable and unique, else by where."""
    entries = list(entries)
    tags = [entry.tag.strip() for entry in entries]
    targets: list[TargetBase] = []
    seen: set[str] = set()
    models: dict[str, type[TargetBase]] = {
        "shadowsocks": ShadowsocksTarget,
        "trojan": TrojanTarget,
    }
    for entry, tag in zip(entries, tags, strict=True):
        try:
            endpoint = format_endpoint(str(entry.fields["host"]), int(entry.fields["port"]))
        except (KeyError, TypeError, ValueError):  # the model says what is wrong, below
            endpoint = entry.where
        usable = bool(tag) and is_printable_name(tag) and len(tag) <= 150 and tags.count(tag) == 1
        name = tag if usable else f"{stem}/{endpoint}"
        if name in seen:
            name = f"{name} ({entry.where})"
        seen.add(name)
        try:
            targets.append(models[entry.protocol].model_validate({"name": name, **entry.fields}))
        except ValidationError as exc:
            raise ConfigError(
                describe_validation_error(exc), source=source, where=entry.where
            ) from None
    return targets


def _read(path: Path) -> str:
    try:
        return read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
