"""How a report reaches a Prometheus that is not open to all: credentials, TLS and extra headers.

The deployment guide puts the central Prometheus behind basic auth or a token, and hosted ones
(Mimir, Cortex, Thanos) want a tenant header. So the report speaks HTTP basic auth (user from
the URL or ``--prometheus-user``, password from the URL, a file or the environment), bearer
tokens (from a file or the environment), a custom CA and a client certificate, and any extra
header such as ``X-Scope-OrgID``.

Secrets are read from files or the environment so that they stay out of shell history and ``ps``;
a password in the URL works too, for convenience. None is ever printed: :attr:`Access.url`,
the URL every message and every report uses, has no credentials and no query string, and header
values are not shown at all.
"""

from __future__ import annotations

import base64
import os
import re
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vpnwatch.errors import ConfigError
from vpnwatch.files import UnreadableFile, read_text

#: Environment variables holding a password or token (their names, not secrets).
ENV_PASSWORD = "VPNWATCH_PROMETHEUS_PASSWORD"  # noqa: S105
ENV_TOKEN = "VPNWATCH_PROMETHEUS_TOKEN"  # noqa: S105
#: Headers the client sets itself, or that carry credentials the options above handle.
_OWN_HEADERS = frozenset({"authorization", "host", "content-type", "content-length"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class Access:
    """Where a Prometheus is and how to be let in; its repr shows no secret."""

    #: ``scheme://host[:port][/path]``: where requests go; it holds no credential and no
    #: query string, so every message and report prints it as it is
    url: str
    #: headers sent with every request; values may be secret and are never printed
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: for https: whom to trust and the client certificate to show
    tls: ssl.SSLContext | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AccessOptions:
    """The ``--prometheus-*`` options as given."""

    user: str | None = None
    password_file: Path | None = None
    token_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    headers: Sequence[str] = ()


def prometheus_access(
    url: str, options: AccessOptions = AccessOptions(), environ: Mapping[str, str] = os.environ
) -> Access:
    """Check the URL and options together; any problem is a ConfigError naming the option."""
    base, url_user, url_password = _split_url(url)
    headers = [_header(text) for text in options.headers]
    credential = _credential(options, url_user, url_password, environ)
    if credential is not None:
        headers.append(("Authorization", credential))
    https = base.startswith("https:")
    if not https:
        for flag, given in (
            ("--prometheus-ca", options.ca_file),
            ("--prometheus-cert", options.cert_file),
            ("--prometheus-key", options.key_file),
        ):
            if given is not None:
                raise ConfigError("needs an https:// URL in --prometheus", where=flag)
    return Access(base, tuple(headers), _tls(options) if https else None)


def _split_url(url: str) -> tuple[str, str | None, str | None]:
    """The base URL without credentials, and the user and password it held."""
    where = "--prometheus"
    try:
        parsed = urllib.parse.urlsplit(url.strip())
        parsed.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ConfigError(
            "is not a URL like https://prometheus.example:9090", where=where
        ) from None
    hostport = parsed.netloc.rpartition("@")[2]
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"give an http:// or https:// URL with a host, not {_without_userinfo(url)!r}",
            where=where,
        )
    if parsed.query or parsed.fragment:
        raise ConfigError("give the base URL, without ? or #", where=where)
    if not (hostport + parsed.path).isprintable():
        raise ConfigError("the URL holds control characters", where=where)
    base = f"{parsed.scheme}://{hostport}{parsed.path}".rstrip("/")
    user = urllib.parse.unquote(parsed.username or "") or None
    password = urllib.parse.unquote(parsed.password) if parsed.password is not None else None
    return base, user, password


def _without_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}" if sep else "…"


def _credential(
    options: AccessOptions,
    url_user: str | None,
    url_password: str | None,
    environ: Mapping[str, str],
) -> str | None:
    """The Authorization header's value for basic auth or a bearer token, if any is given."""
    if options.user is not None and url_user is not None:
        raise ConfigError("the URL names a user already", where="--prometheus-user")
    user = options.user if options.user is not None else url_user
    password = url_password
    if options.password_file is not None:
        if password is not None:
            raise ConfigError(
                "the URL holds a password already", where="--prometheus-password-file"
            )
        password = _secret(options.password_file, "--prometheus-password-file")
    elif password is None and user is not None:
        password = environ.get(ENV_PASSWORD)
    token = (
        _secret(options.token_file, "--prometheus-token-file")
        if options.token_file is not None
        else environ.get(ENV_TOKEN)
    )
    if user is None:
        if password is not None:
            raise ConfigError("a password needs a user", where="--prometheus-user")
        return None if not token else f"Bearer {token}"
    if token:
        source = "--prometheus-token-file" if options.token_file else f"${ENV_TOKEN}"
        raise ConfigError(f"give basic auth or {source}, not both", where="--prometheus-user")
    if password is None:
        raise ConfigError(
            f"no password for the user: give --prometheus-password-file or set ${ENV_PASSWORD}",
            where="--prometheus-user",
        )
    if ":" in user:
        raise ConfigError("a basic-auth user name cannot hold ':'", where="--prometheus-user")
    pair = f"{user}:{password}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


def _secret(path: Path, flag: str) -> str:
    """A password or token file's content, without its final newline; never shown."""
    try:
        text = read_text(path).rstrip("\r\n")
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read {path}: {exc}", where=flag) from None
    if not text or not text.isprintable():
        raise ConfigError(f"{path} must hold one line of printable text", where=flag)
    return text


def _header(text: str) -> tuple[str, str]:
    """``Name: value``; the message names the header, never its value."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    where = "--prometheus-header"
    if not sep or not _HEADER_NAME.fullmatch(name):
        raise ConfigError("give 'Name: value', e.g. 'X-Scope-OrgID: tenant-1'", where=where)
    if name.lower() in _OWN_HEADERS:
        raise ConfigError(
            f"{name} is set by the report itself (credentials: --prometheus-user,"
            " --prometheus-token-file)",
            where=where,
        )
    if not value.isprintable():
        raise ConfigError(f"the value of {name} holds control characters", where=where)
    return name, value


def _tls(options: AccessOptions) -> ssl.SSLContext:
    """Verify the server against the system's CAs, or ``--prometheus-ca``; show a client cert."""
    cadata = None
    if options.ca_file is not None:
        cadata = _readable(options.ca_file, "--prometheus-ca")
    try:
        context = ssl.create_default_context(cadata=cadata)
    except ssl.SSLError:
        raise ConfigError(
            f"{options.ca_file} holds no PEM certificate", where="--prometheus-ca"
        ) from None
    if (options.cert_file is None) != (options.key_file is None):
        raise ConfigError("give --prometheus-cert and --prometheus-key together", where="TLS")
    if options.cert_file is not None and options.key_file is not None:
        _readable(options.cert_file, "--prometheus-cert")
        _readable(options.key_file, "--prometheus-key")
        try:
            context.load_cert_chain(options.cert_file, options.key_file, password=_no_passphrase)
        except (ssl.SSLError, OSError, ValueError):
            raise ConfigError(
                f"{options.cert_file} and {options.key_file} are not a matching PEM certificate"
                " and unencrypted key",
                where="--prometheus-cert",
            ) from None
    return context


def _readable(path: Path, flag: str) -> str:
    """Read a certificate or key file first: a FIFO or a device is refused, not waited on."""
    try:
        return read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read {path}: {exc}", where=flag) from None


def _no_passphrase() -> str:
    """OpenSSL would prompt on the terminal for an encrypted key: refuse instead."""
    raise ValueError("encrypted key")
