"""Import OpenVPN client configs (``.ovpn``): every ``remote`` becomes an :class:`OpenVPNTarget`.

Keys and certificates may be inline (``<ca>…</ca>``) or paths relative to the file. Directives the
probe does not need are ignored with a debug line, because real files carry many (``dev``,
``persist-tun``, ``verb``…); directives it cannot honour (``pkcs12``, a server-side ``proto``)
are errors, as is anything malformed.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.targets.base import format_endpoint
from vpnwatch.targets.openvpn import DEFAULT_PORT, OpenVPNTarget

log = logging.getLogger(__name__)

_PROTOS = {
    "udp": "udp",
    "udp4": "udp",
    "udp6": "udp",
    "tcp": "tcp",
    "tcp4": "tcp",
    "tcp6": "tcp",
    "tcp-client": "tcp",
    "tcp4-client": "tcp",
    "tcp6-client": "tcp",
}
#: Directives whose value is PEM or key text, inline or in a file, and the target field for each.
_MATERIAL = {
    "ca": "ca",
    "cert": "cert",
    "key": "key",
    "tls-auth": "tls_key",
    "tls-crypt": "tls_key",
}
_MATERIAL["tls-crypt-v2"] = "tls_key"
_WRAPS = ("tls-auth", "tls-crypt", "tls-crypt-v2")
_UNSUPPORTED = {
    "pkcs12": "pkcs12 is not supported: convert it to cert and key (openssl pkcs12 -nodes)",
    "http-proxy": "http-proxy is not supported: the probe connects directly",
    "socks-proxy": "socks-proxy is not supported: the probe connects directly",
}
_X509_TYPES = ("subject", "name", "name-prefix")
_DEFAULT_CIPHERS = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"


@dataclass(frozen=True)
class _Remote:
    host: str
    port: int | None
    proto: str | None
    line: int


@dataclass
class _Config:
    """What the file says, before it becomes targets; ``lines`` maps each field to its line."""

    source: Path
    fields: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)
    remotes: list[_Remote] = field(default_factory=list)
    proto: str = "udp"
    port: int = DEFAULT_PORT
    cipher: str | None = None
    #: Where ``auth-user-pass`` appeared, if it did (with or without a file).
    auth_user_pass: str | None = None

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
    proto = _PROTOS.get(text.lower())
    if proto is None:
        raise ConfigError(
            f"proto {text!r} is not a client transport (udp or tcp-client)",
            source=source,
            where=where,
        )
    return proto


def _read_material(d: _Directive, argument: str) -> str:
    path = d.config.source.parent / argument
    try:
        return read_text(path)
    except UnreadableFile as exc:
        raise d.fail(f"cannot read {path}: {exc}") from None


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

    def set(self, name: str, value: Any) -> None:
        self.config.set(name, value, self.where)


def _remote(d: _Directive) -> None:
    port = _port(d.args[1], d.config.source, d.where) if len(d.args) > 1 else None
    proto = _proto(d.args[2], d.config.source, d.where) if len(d.args) > 2 else None
    d.config.remotes.append(_Remote(d.arg(0), port, proto, d.line))


def _set_proto(d: _Directive) -> None:
    d.config.proto = _proto(d.arg(0), d.config.source, d.where)


def _set_port(d: _Directive) -> None:
    d.config.port = _port(d.arg(0), d.config.source, d.where)


def _key_direction(d: _Directive) -> None:
    if d.arg(0) not in ("0", "1"):
        raise d.fail("key-direction is 0 or 1")
    d.set("key_direction", int(d.arg(0)))


def _cipher(d: _Directive) -> None:
    d.config.cipher = d.arg(0)


def _auth_user_pass(d: _Directive) -> None:
    d.config.auth_user_pass = d.where
    if d.args:
        d.set("auth_user_pass", d.config.source.parent / d.args[0])


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


_HANDLERS: dict[str, Callable[[_Directive], None]] = {
    "remote": _remote,
    "proto": _set_proto,
    "port": _set_port,
    "rport": _set_port,
    "key-direction": _key_direction,
    "auth": lambda d: d.set("auth", d.arg(0)),
    "data-ciphers": lambda d: d.set("data_ciphers", d.arg(0)),
    "cipher": _cipher,
    "auth-user-pass": _auth_user_pass,
    "verify-x509-name": _verify_x509_name,
    "remote-cert-tls": _remote_cert_tls,
}


def _material(d: _Directive, name: str, inline: str | None) -> None:
    """ca, cert, key and the wrapping keys: inline blocks, or files relative to the config."""
    if name in _WRAPS:
        d.set("tls_wrap", name)
    if name == "tls-auth" and len(d.args) > 1:
        _key_direction(_Directive(d.config, d.args[1:], d.line, d.where))
    if inline is None and d.arg(0) == "[inline]":
        return  # the block, before or after this line, carries the text
    d.set(_MATERIAL[name], inline if inline is not None else _read_material(d, d.arg(0)))


def _apply(config: _Config, words: list[str], line: int, inline: str | None = None) -> None:
    """Record one directive from ``line``; ``inline`` is the text of an inline block."""
    name = words[0]
    where = f"line {line}: <{name}>" if inline is not None else f"line {line}: {name}"
    directive = _Directive(config, words[1:], line, where)
    if name in _UNSUPPORTED:
        raise directive.fail(_UNSUPPORTED[name])
    if name in _MATERIAL:
        _material(directive, name, inline)
    elif name in _HANDLERS:
        _HANDLERS[name](directive)
    else:
        log.debug("%s: %s: ignoring %s (not needed to probe)", config.source, where, name)


def _parse(source: Path, text: str) -> _Config:
    config = _Config(source)
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        raw = lines[number].strip()
        number += 1
        if not raw or raw[0] in "#;":
            continue
        if raw.startswith("<") and raw.endswith(">") and not raw.startswith("</"):
            tag, start = raw[1:-1], number
            closing = f"</{tag}>"
            body = []
            while number < len(lines) and lines[number].strip() != closing:
                body.append(lines[number])
                number += 1
            if number >= len(lines):
                raise ConfigError(f"<{tag}> is never closed", source=source, where=f"line {start}")
            number += 1
            _apply(config, [tag], start, "\n".join(body) + "\n")
            continue
        words = _tokens(raw, source, f"line {number}")
        words[0] = words[0].removeprefix("--")
        _apply(config, words, number)
    return config


def _data_ciphers(config: _Config) -> str:
    ciphers = str(config.fields.get("data_ciphers", _DEFAULT_CIPHERS))
    if config.cipher and config.cipher.upper() not in ciphers.upper().split(":"):
        ciphers += f":{config.cipher}"  # OpenVPN 2.6 offers --cipher too
    return ciphers


def load_ovpn(path: Path, *, auth_user_pass: Path | None = None) -> list[OpenVPNTarget]:
    """Targets for every ``remote`` in the ``.ovpn`` file at ``path``.

    ``auth_user_pass`` (a two-line username/password file) overrides the file's own
    ``auth-user-pass``; a config that asks for credentials without a file needs it.
    """
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=path) from None
    config = _parse(path, text)
    if not config.remotes:
        raise ConfigError("has no remote directive: nothing to probe", source=path)
    if auth_user_pass is not None:
        config.set("auth_user_pass", auth_user_pass, "--auth-user-pass")
    elif config.auth_user_pass and "auth_user_pass" not in config.fields:
        raise ConfigError(
            "auth-user-pass names no file: give the credentials file with --auth-user-pass FILE",
            source=path,
            where=config.auth_user_pass,
        )
    config.set("data_ciphers", _data_ciphers(config), config.lines.get("data_ciphers", ""))
    several = len(config.remotes) > 1
    targets = []
    for remote in config.remotes:
        port = remote.port or config.port
        name = f"{path.stem}/{format_endpoint(remote.host, port)}" if several else path.stem
        fields = dict(config.fields, name=name, host=remote.host, port=port)
        fields["proto"] = remote.proto or config.proto
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
