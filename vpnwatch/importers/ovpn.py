"""Import OpenVPN client configs (``.ovpn``): every ``remote`` becomes an :class:`OpenVPNTarget`.

What ``openvpn`` 2.6 accepts is accepted here: keys and certificates inline (``<ca>…</ca>``) or
as paths relative to the file, a client certificate's chain (``<extra-certs>``, or after the
certificate in ``cert``), ``pkcs12``, encrypted keys with ``askpass FILE``, ``peer-fingerprint``
without a CA, ``<connection>`` blocks (each remote in them a target), inline
``<auth-user-pass>``, and the options that decide whether the real client would connect: TLS
directives, ``data-ciphers``/``data-ciphers-fallback``, compression, ``pull-filter``. Directives
the probe does not need are ignored with a debug line, because real files carry many (``dev``,
``persist-tun``, ``fast-io``, ``setenv``, and ``cipher``, which 2.6 leaves out of the cipher
negotiation); directives it cannot honour (a proxy, a server-side
``proto``) are errors, as is anything malformed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_bytes, read_text
from vpnwatch.importers.ovpn_material import (
    MaterialError,
    decrypt_key,
    is_encrypted_key,
    read_pkcs12,
    split_certificates,
)
from vpnwatch.targets.base import format_endpoint
from vpnwatch.targets.openvpn import DEFAULT_PORT, OpenVPNTarget

log = logging.getLogger(__name__)

#: proto words → (transport, IP version or None for either).
_PROTOS: dict[str, tuple[str, int | None]] = {
    "udp": ("udp", None),
    "udp4": ("udp", 4),
    "udp6": ("udp", 6),
    "tcp": ("tcp", None),
    "tcp4": ("tcp", 4),
    "tcp6": ("tcp", 6),
    "tcp-client": ("tcp", None),
    "tcp4-client": ("tcp", 4),
    "tcp6-client": ("tcp", 6),
}
#: Directives whose value is PEM or key text, inline or in a file, and the target field for each.
_MATERIAL = {
    "ca": "ca",
    "cert": "cert",
    "key": "key",
    "extra-certs": "extra_certs",
    "crl-verify": "crl_verify",
    "tls-auth": "tls_key",
    "tls-crypt": "tls_key",
    "tls-crypt-v2": "tls_key",
}
_WRAPS = ("tls-auth", "tls-crypt", "tls-crypt-v2")
_UNSUPPORTED = {
    "http-proxy": "http-proxy is not supported: the probe connects directly",
    "socks-proxy": "socks-proxy is not supported: the probe connects directly",
    "pkcs11-providers": "pkcs11 tokens are not supported: export the certificate and key",
    "cryptoapicert": "cryptoapicert (the Windows store) is not supported: export cert and key",
    "management-external-key": "an external key is not supported: give the key itself",
}
_X509_TYPES = ("subject", "name", "name-prefix")
_TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
_CERT_PROFILES = ("insecure", "legacy", "preferred", "suiteb")
_PULL_FILTER_ACTIONS = ("accept", "ignore", "reject")
#: Client compression lines after which 2.6 accepts a server's compression too: it makes
#: ``allow-compression no`` (stub framing only) the default only when no line enabled real
#: compression and ``compress`` set no flag of its own (``options_postprocess_mutate``), and
#: ``compress`` with or without ``stub``/``stub-v2`` does set one. Only ``comp-lzo no`` keeps it.
_COMPRESSING = {("comp-lzo",), ("comp-lzo", "yes"), ("comp-lzo", "adaptive")} | {
    ("compress", *alg) for alg in ((), ("stub",), ("stub-v2",), ("lzo",), ("lz4",), ("lz4-v2",),
                                   ("migrate",))
}  # fmt: skip


@dataclass(frozen=True)
class _Remote:
    host: str
    port: int | None
    proto: str | None
    line: int
    #: The ``<connection>`` block's own port and proto, which override the file's.
    block_port: int | None = None
    block_proto: str | None = None


@dataclass
class _Config:
    """What the file says, before it becomes targets; ``lines`` maps each field to its line."""

    source: Path
    fields: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)
    remotes: list[_Remote] = field(default_factory=list)
    proto: str = "udp"
    port: int = DEFAULT_PORT
    #: Where ``auth-user-pass`` appeared, if it did (with or without a file).
    auth_user_pass: str | None = None
    #: ``askpass FILE``: the passphrase of an encrypted key or pkcs12 file, and where it was.
    askpass: tuple[str, str] | None = None
    pkcs12: tuple[bytes, str] | None = None
    #: ``allow-compression`` as written, and whether the file itself compresses.
    allow_compression: str | None = None
    compresses: bool = False
    pull_filters: list[tuple[str, str]] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    #: Inside a ``<connection>`` block: its port and proto, set by its own directives.
    block: dict[str, Any] | None = None

    def set(self, name: str, value: Any, where: str) -> None:
        self.fields[name] = value
        self.lines[name] = where


def _tokens(line: str, source: Path, where: str) -> list[str]:
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise ConfigError(f"cannot split the line: {exc}", source=source, where=where) from None


def _port(text: str, source: Path, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError("port is not a number from 1 to 65535", source=source, where=where)
    return int(text)


def _proto(text: str, source: Path, where: str) -> str:
    if text.lower() not in _PROTOS:
        raise ConfigError(
            f"proto {text!r} is not a client transport (udp or tcp-client)",
            source=source,
            where=where,
        )
    return text.lower().removesuffix("-client")


@dataclass(frozen=True)
class _Directive:
    """One directive being applied: its arguments and where it is, for error messages."""

    config: _Config
    args: list[str]
    line: int
    where: str

    def fail(self, message: str) -> ConfigError:
        return ConfigError(message, source=self.config.source, where=self.where)

    def arg(self, index: int) -> str:
        if len(self.args) <= index:
            raise self.fail(f"needs {index + 1} argument(s)")
        return self.args[index]

    def choice(self, index: int, choices: tuple[str, ...]) -> str:
        value = self.arg(index)
        if value not in choices:
            raise self.fail(f"must be one of {', '.join(choices)}")
        return value

    def set(self, name: str, value: Any) -> None:
        self.config.set(name, value, self.where)

    def path(self, argument: str) -> Path:
        return self.config.source.parent / argument

    def read_text(self, argument: str) -> str:
        try:
            return read_text(self.path(argument))
        except UnreadableFile as exc:
            raise self.fail(f"cannot read {self.path(argument)}: {exc}") from None

    def read_bytes(self, argument: str) -> bytes:
        try:
            return read_bytes(self.path(argument))
        except UnreadableFile as exc:
            raise self.fail(f"cannot read {self.path(argument)}: {exc}") from None


def _remote(d: _Directive) -> None:
    port = _port(d.args[1], d.config.source, d.where) if len(d.args) > 1 else None
    proto = _proto(d.args[2], d.config.source, d.where) if len(d.args) > 2 else None
    d.config.remotes.append(_Remote(d.arg(0), port, proto, d.line))


def _set_proto(d: _Directive) -> None:
    proto = _proto(d.arg(0), d.config.source, d.where)
    if d.config.block is not None:
        d.config.block["proto"] = proto
    else:
        d.config.proto = proto


def _set_port(d: _Directive) -> None:
    port = _port(d.arg(0), d.config.source, d.where)
    if d.config.block is not None:
        d.config.block["port"] = port
    else:
        d.config.port = port


def _key_direction(d: _Directive) -> None:
    if d.arg(0) not in ("0", "1"):
        raise d.fail("key-direction is 0 or 1")
    d.set("key_direction", int(d.arg(0)))


def _auth_user_pass(d: _Directive, inline: str | None = None) -> None:
    d.config.auth_user_pass = d.where
    if inline is not None:
        lines = inline.splitlines()
        if len(lines) < 2 or not lines[0].strip() or not lines[1]:
            raise d.fail("the inline block must hold a username line and a password line")
        d.set("username", lines[0].strip())
        d.set("password", SecretStr(lines[1]))
    elif d.args and d.args[0] != "[inline]":
        d.set("auth_user_pass", d.path(d.args[0]))


def _verify_x509_name(d: _Directive) -> None:
    kind = d.args[1] if len(d.args) > 1 else "subject"
    if kind not in _X509_TYPES:
        raise d.fail(f"type must be one of {', '.join(_X509_TYPES)}")
    d.set("verify_x509_name", d.arg(0))
    d.set("verify_x509_type", kind)


def _remote_cert_tls(d: _Directive) -> None:
    if d.arg(0) != "server":
        raise d.fail("a client checks 'remote-cert-tls server'")
    d.set("remote_cert_tls", "server")


def _tls_version_min(d: _Directive) -> None:
    d.set("tls_version_min", d.choice(0, _TLS_VERSIONS))
    if len(d.args) > 1:
        d.choice(1, ("or-highest",))
        d.set("tls_version_min_or_highest", True)


def _askpass(d: _Directive) -> None:
    if not d.args:
        raise d.fail("askpass without a file asks at a terminal: give the passphrase file")
    d.config.askpass = (d.read_text(d.args[0]).splitlines()[0:1] or [""])[0], d.where


def _compression(name: str) -> Callable[[_Directive], None]:
    def apply(d: _Directive) -> None:
        if (name, *d.args) in _COMPRESSING:
            d.config.compresses = True

    return apply


def _allow_compression(d: _Directive) -> None:
    d.config.allow_compression = d.choice(0, ("no", "asym", "yes"))


def _pull_filter(d: _Directive) -> None:
    d.config.pull_filters.append((d.choice(0, _PULL_FILTER_ACTIONS), d.arg(1)))


def _peer_fingerprint(d: _Directive, inline: str | None = None) -> None:
    text = inline if inline is not None else d.arg(0)
    for line in text.splitlines():
        if line.strip() and line.strip()[0] not in "#;":
            d.config.fingerprints += line.split()
    d.config.lines["peer_fingerprint"] = d.where


def _pkcs12(d: _Directive, inline: str | None = None) -> None:
    if inline is not None:
        try:
            data = base64.b64decode("".join(inline.split()), validate=True)
        except (binascii.Error, ValueError):
            raise d.fail("the inline block is not base64") from None
    elif d.arg(0) == "[inline]":
        return
    else:
        data = d.read_bytes(d.arg(0))
    d.config.pkcs12 = data, d.where


def _tun_mtu_max(d: _Directive) -> None:
    if not d.arg(0).isdigit():
        raise d.fail("is not a number")
    d.set("tun_mtu_max", int(d.arg(0)))


def _simple(field_name: str) -> Callable[[_Directive], None]:
    return lambda d: d.set(field_name, d.arg(0))


_HANDLERS: dict[str, Callable[[_Directive], None]] = {
    "remote": _remote,
    "proto": _set_proto,
    "port": _set_port,
    "rport": _set_port,
    "key-direction": _key_direction,
    "auth": _simple("auth"),
    "data-ciphers": _simple("data_ciphers"),
    "ncp-ciphers": _simple("data_ciphers"),
    "data-ciphers-fallback": _simple("data_ciphers_fallback"),
    "verify-x509-name": _verify_x509_name,
    "remote-cert-tls": _remote_cert_tls,
    "tls-version-min": _tls_version_min,
    "tls-version-max": lambda d: d.set("tls_version_max", d.choice(0, _TLS_VERSIONS)),
    "tls-cipher": _simple("tls_cipher"),
    "tls-ciphersuites": _simple("tls_ciphersuites"),
    "tls-groups": _simple("tls_groups"),
    "tls-cert-profile": lambda d: d.set("tls_cert_profile", d.choice(0, _CERT_PROFILES)),
    "tun-mtu-max": _tun_mtu_max,
    "askpass": _askpass,
    "comp-lzo": _compression("comp-lzo"),
    "compress": _compression("compress"),
    "allow-compression": _allow_compression,
    "pull-filter": _pull_filter,
}
#: Directives that may also be inline blocks (``<auth-user-pass>``…): ``inline`` is its text.
_INLINE_HANDLERS: dict[str, Callable[[_Directive, str | None], None]] = {
    "auth-user-pass": _auth_user_pass,
    "peer-fingerprint": _peer_fingerprint,
    "pkcs12": _pkcs12,
}


def _material(d: _Directive, name: str, inline: str | None) -> None:
    """ca, cert, key and the wrapping keys: inline blocks, or files relative to the config."""
    if name in _WRAPS:
        d.set("tls_wrap", name)
    if name == "tls-auth" and len(d.args) > 1:
        _key_direction(_Directive(d.config, d.args[1:], d.line, d.where))
    if inline is None and d.arg(0) == "[inline]":
        return  # the block, before or after this line, carries the text
    d.set(_MATERIAL[name], inline if inline is not None else d.read_text(d.arg(0)))


def _apply(config: _Config, words: list[str], line: int, inline: str | None = None) -> None:
    """Record one directive from ``line``; ``inline`` is the text of an inline block."""
    name = words[0]
    where = f"line {line}: <{name}>" if inline is not None else f"line {line}: {name}"
    directive = _Directive(config, words[1:], line, where)
    if name in _UNSUPPORTED:
        raise directive.fail(_UNSUPPORTED[name])
    if name in _MATERIAL:
        _material(directive, name, inline)
    elif name in _INLINE_HANDLERS:
        _INLINE_HANDLERS[name](directive, inline)
    elif inline is not None:
        log.debug(
            "%s: %s: ignoring the <%s> block (not needed to probe)", config.source, where, name
        )
    elif name in _HANDLERS:
        _HANDLERS[name](directive)
    else:
        log.debug("%s: %s: ignoring %s (not needed to probe)", config.source, where, name)


def _parse(config: _Config, lines: list[str], first: int = 0) -> None:
    """Apply ``lines`` (line ``first + 1`` onwards of the file) to ``config``."""
    number = 0
    while number < len(lines):
        raw = lines[number].strip()
        number += 1
        if not raw or raw[0] in "#;":
            continue
        if raw.startswith("<") and raw.endswith(">") and not raw.startswith("</"):
            tag, start = raw[1:-1], first + number
            closing = f"</{tag}>"
            body = []
            while number < len(lines) and lines[number].strip() != closing:
                body.append(lines[number])
                number += 1
            if number >= len(lines):
                raise ConfigError(
                    f"<{tag}> is never closed", source=config.source, where=f"line {start}"
                )
            number += 1
            if tag == "connection":
                _connection(config, body, start)
            else:
                _apply(config, [tag], start, "\n".join(body) + "\n")
            continue
        words = _tokens(raw, config.source, f"line {first + number}")
        words[0] = words[0].removeprefix("--")
        _apply(config, words, first + number)


def _connection(config: _Config, body: list[str], start: int) -> None:
    """A ``<connection>`` block: its remotes, with its own port and proto, become targets."""
    if config.block is not None:
        raise ConfigError(
            "<connection> blocks do not nest", source=config.source, where=f"line {start}"
        )
    before = len(config.remotes)
    block: dict[str, Any] = {}
    config.block = block
    try:
        _parse(config, body, start)
    finally:
        config.block = None
    config.remotes[before:] = [
        dataclasses.replace(r, block_port=block.get("port"), block_proto=block.get("proto"))
        for r in config.remotes[before:]
    ]
    if len(config.remotes) == before:
        raise ConfigError(
            "<connection> has no remote", source=config.source, where=f"line {start}: <connection>"
        )


def _effective_allow_compression(config: _Config) -> str:
    """What 2.6 makes of the file's compression lines (``options_postprocess_mutate``)."""
    if config.allow_compression is not None:
        return config.allow_compression
    return "asym" if config.compresses else "no"


def _keys_and_certificates(config: _Config) -> None:
    """pkcs12 into cert, key and CA; chains split off the certificate; encrypted keys decrypted."""
    passphrase = config.askpass[0] if config.askpass else None
    if config.pkcs12 is not None:
        data, where = config.pkcs12
        try:
            bundle = read_pkcs12(data, passphrase)
        except MaterialError as exc:
            raise ConfigError(f"pkcs12 {exc}", source=config.source, where=where) from None
        config.set("cert", bundle.cert, where)
        config.set("key", bundle.key, where)
        if bundle.chain:
            # OpenVPN trusts the bundle's CAs unless the file names its own.
            target = "extra_certs" if "ca" in config.fields else "ca"
            config.set(target, bundle.chain, where)
    cert = config.fields.get("cert")
    if isinstance(cert, str):
        leaf, chain = split_certificates(cert)
        if chain:
            config.fields["cert"] = leaf
            extra = config.fields.get("extra_certs", "")
            config.set("extra_certs", chain + extra, config.lines["cert"])
    key = config.fields.get("key")
    if isinstance(key, str) and is_encrypted_key(key):
        where = config.lines["key"]
        if passphrase is None:
            raise ConfigError(
                "the key is encrypted: give its passphrase with 'askpass FILE'",
                source=config.source,
                where=where,
            )
        try:
            config.fields["key"] = decrypt_key(key, passphrase)
        except MaterialError as exc:
            raise ConfigError(f"key {exc}", source=config.source, where=where) from None


def _finish(config: _Config, auth_user_pass: Path | None) -> None:
    """Everything that depends on the whole file: credentials, ciphers, keys, policies."""
    path = config.source
    if auth_user_pass is not None:
        config.fields.pop("username", None)
        config.fields.pop("password", None)
        config.set("auth_user_pass", auth_user_pass, "--auth-user-pass")
    elif config.auth_user_pass and not {"auth_user_pass", "username"} & config.fields.keys():
        raise ConfigError(
            "auth-user-pass names no file: give the credentials file with --auth-user-pass FILE",
            source=path,
            where=config.auth_user_pass,
        )
    config.fields["allow_compression"] = _effective_allow_compression(config)
    if config.pull_filters:
        config.fields["pull_filter"] = tuple(config.pull_filters)
    if config.fingerprints:
        config.fields["peer_fingerprint"] = tuple(config.fingerprints)
    _keys_and_certificates(config)


def _names(config: _Config, path: Path) -> list[str]:
    """A name per remote: the file's stem alone, or ``stem/host:port``, with the proto added
    where two remotes share a host and port (udp and tcp, IPv4 and IPv6) and a count where even
    that repeats, so that no two targets of a file share a name."""
    if len(config.remotes) == 1:
        return [path.stem]
    endpoints = [
        format_endpoint(r.host, r.port or r.block_port or config.port) for r in config.remotes
    ]
    shared = Counter(endpoints)
    names = []
    for remote, endpoint in zip(config.remotes, endpoints, strict=True):
        name = f"{path.stem}/{endpoint}"
        if shared[endpoint] > 1:
            name += f"/{remote.proto or remote.block_proto or config.proto}"
        names.append(name)
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def load_ovpn(path: Path, *, auth_user_pass: Path | None = None) -> list[OpenVPNTarget]:
    """Targets for every ``remote`` in the ``.ovpn`` file at ``path``.

    ``auth_user_pass`` (a two-line username/password file) overrides the file's own
    ``auth-user-pass``; a config that asks for credentials without a file needs it.
    """
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=path) from None
    config = _Config(path)
    _parse(config, text.splitlines())
    if not config.remotes:
        raise ConfigError("has no remote directive: nothing to probe", source=path)
    _finish(config, auth_user_pass)
    targets = []
    for remote, name in zip(config.remotes, _names(config, path), strict=True):
        port = remote.port or remote.block_port or config.port
        transport, version = _PROTOS[remote.proto or remote.block_proto or config.proto]
        fields = dict(config.fields, name=name, host=remote.host, port=port, proto=transport)
        if version is not None:
            fields["ip_version"] = version
        try:
            targets.append(OpenVPNTarget.model_validate(fields))
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]["loc"]
            where = config.lines.get(str(first[0])) if first else None
            raise ConfigError(
                describe_validation_error(exc),
                source=path,
                where=where or f"line {remote.line}: remote",
            ) from None
    return targets
