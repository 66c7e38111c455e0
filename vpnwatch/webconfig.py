"""TLS and basic authentication for the HTTP endpoints, from an exporter-toolkit web config file.

The file has the format every Prometheus exporter reads with ``--web.config.file``, so operators
reuse what they already have::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: clients-ca.crt      # optional: then clients must present a certificate
      client_auth_type: RequireAndVerifyClientCert
    basic_auth_users:
      prometheus: $2y$10$...              # bcrypt hash, e.g. htpasswd -nBC 10 "" | tr -d ':'
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}

Relative paths are relative to the file. Passwords are checked against bcrypt hashes off the
event loop (a check costs tens of milliseconds by design), and a successful check is remembered
by a keyed digest of the password so that every scrape does not pay it again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import bcrypt
import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vpnwatch.errors import ConfigError, describe_validation_error

#: Paths anyone may reach without a password: what a container health check asks.
PUBLIC_PATHS = frozenset({"/healthz"})
#: How many distinct (user, password) pairs that passed are remembered.
REMEMBERED = 64
#: bcrypt reads at most this many bytes of a password.
BCRYPT_MAX_PASSWORD = 72
_BCRYPT_HASH = r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$"


class ClientAuth(StrEnum):
    """The exporter toolkit's client certificate policies that make sense with a client CA."""

    NONE = "NoClientCert"
    VERIFY_IF_GIVEN = "VerifyClientCertIfGiven"
    REQUIRE_AND_VERIFY = "RequireAndVerifyClientCert"


class TlsVersion(StrEnum):
    TLS12 = "TLS12"
    TLS13 = "TLS13"


class TlsServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    #: Default: verify a client certificate exactly when a client CA is given.
    client_auth_type: ClientAuth | None = None
    min_version: TlsVersion = TlsVersion.TLS12


#: The response headers the exporter toolkit lets a web config set.
SettableHeader = Literal[
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
]


class HttpServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Accepted so that existing files load; vpnwatch's server speaks HTTP/1.1 either way.
    http2: bool = True
    headers: dict[SettableHeader, str] = Field(default_factory=dict)


class WebConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, Annotated[str, Field(pattern=_BCRYPT_HASH)]] = Field(
        default_factory=dict
    )

    @field_validator("basic_auth_users", mode="before")
    @classmethod
    def _hashes_are_strings(cls, users: object) -> object:
        if isinstance(users, dict) and not all(isinstance(v, str) for v in users.values()):
            raise ValueError("every user needs a bcrypt hash as a string")
        return users


@dataclass
class WebConfig:
    """What the server applies: an SSL context (None for plain HTTP) and the users' hashes."""

    ssl_context: ssl.SSLContext | None
    users: dict[str, bytes]
    headers: dict[str, str] = field(default_factory=dict)
    _passed: OrderedDict[bytes, None] = field(default_factory=OrderedDict, repr=False)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    async def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header names a user with the right password."""
        if not self.users:
            return True
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        expected = self.users.get(user)
        if expected is None:
            return False
        if len(password) > BCRYPT_MAX_PASSWORD:  # bcrypt ignores the rest; Go's refuses it too
            return False
        remembered = hmac.new(self._key, user.encode() + b"\0" + password, hashlib.sha256).digest()
        if remembered in self._passed:
            self._passed.move_to_end(remembered)
            return True
        if not await asyncio.to_thread(bcrypt.checkpw, password, expected):
            return False
        self._passed[remembered] = None
        if len(self._passed) > REMEMBERED:
            self._passed.popitem(last=False)
        return True

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        """An aiohttp middleware that adds the configured headers to every answer and answers
        401 to requests without valid credentials."""

        @web.middleware
        async def secured(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if request.path in PUBLIC_PATHS or await self.allows(
                request.headers.get("Authorization")
            ):
                response = await handler(request)
            else:
                response = web.Response(
                    status=401,
                    text="401 Unauthorized\n",
                    headers={"WWW-Authenticate": 'Basic realm="vpnwatch"'},
                )
            response.headers.update(self.headers)
            return response

        return secured


def load_web_config(path: Path) -> WebConfig:
    """Read and apply a web config file; any problem is one ConfigError naming the file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise ConfigError("not valid YAML", source=path, where=where) from None
    try:
        spec = WebConfigFile.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), source=path) from None
    tls = spec.tls_server_config
    context = _ssl_context(tls, path.parent, path) if tls is not None else None
    users = {user: hashed.encode() for user, hashed in spec.basic_auth_users.items()}
    headers = {str(name): value for name, value in spec.http_server_config.headers.items()}
    return WebConfig(context, users, headers)


def _ssl_context(tls: TlsServerConfig, base: Path, source: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if tls.min_version is TlsVersion.TLS13 else ssl.TLSVersion.TLSv1_2
    )
    cert, key = base / tls.cert_file, base / tls.key_file
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        # Neither the key nor its path's content goes into the message: only which files.
        raise ConfigError(
            f"cannot load the certificate and key ({_reason(exc)})",
            source=source,
            where="tls_server_config.cert_file/key_file",
        ) from None
    policy = tls.client_auth_type or (
        ClientAuth.REQUIRE_AND_VERIFY if tls.client_ca_file is not None else ClientAuth.NONE
    )
    if policy is not ClientAuth.NONE:
        if tls.client_ca_file is None:
            raise ConfigError(
                f"{policy.value} needs a client_ca_file",
                source=source,
                where="tls_server_config.client_auth_type",
            )
        try:
            context.load_verify_locations(base / tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the client CA ({_reason(exc)})",
                source=source,
                where="tls_server_config.client_ca_file",
            ) from None
        context.verify_mode = (
            ssl.CERT_REQUIRED if policy is ClientAuth.REQUIRE_AND_VERIFY else ssl.CERT_OPTIONAL
        )
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or "not PEM").lower().replace("_", " ")
    return str(exc.strerror or exc).lower()


def _basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from ``Basic base64(user:password)``, or None if it is not that."""
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None
