"""An AnyConnect-compatible SSL VPN gateway (ocserv, Cisco ASA) to probe, and how to log in.

A gateway is a URL, as users give it to ``openconnect`` or the AnyConnect client
(``https://vpn.example.net/engineering``: the path selects a group on an ASA), with the group to
choose from the server's list, a username and password (``password_file:`` or
``auth_user_pass:``, never inline in a shared file), a client certificate and key, and either
the CA the server's certificate must chain to (the system's trust store by default) or the
server key's ``pin-sha256:``, as ``openconnect --servercert`` takes it.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.openvpn import read_auth_user_pass
from vpnwatch.targets.pem import Certificate, Certificates, PrivateKey, check_key_matches

DEFAULT_PORT = 443
PIN_PREFIX = "pin-sha256:"


def split_url(url: str) -> dict[str, Any]:
    """Host, port and path of a gateway URL (``https://`` may be left out, as openconnect allows).

    Raises ValueError with a message fit for the user.
    """
    text = url.strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "https":
        raise ValueError("url must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("url must not carry a username or password: use username, password_file")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError("url has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("url has no host")
    return {"host": parts.hostname, "port": port, "path": parts.path or "/"}


class AnyConnectTarget(TargetBase):
    """One gateway and the credentials the probe logs in with."""

    protocol: Literal["anyconnect"] = "anyconnect"
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PORT
    #: The URL's path (a group URL on Cisco gateways); ``url:`` sets host, port and path at once.
    path: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^/[!-~]*$")] = "/"
    #: The group chosen from the server's list (``openconnect --authgroup``), by value or label.
    group: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    username: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    password: SecretStr | None = None
    #: A two-line username/password file (OpenVPN's format); read at load.
    auth_user_pass: Path | None = None
    #: Client certificate (PEM) and its unencrypted key, for certificate logins.
    cert: Certificate | None = Field(default=None, repr=False)
    key: PrivateKey | None = None
    #: PEM certificates the server's chain must lead to; the system's trust store when unset.
    ca: Certificates | None = Field(default=None, repr=False)
    #: ``pin-sha256:BASE64`` of the server's public key: accepted instead of a chain to a CA.
    servercert: str | None = None

    @property
    def transport(self) -> str:
        return "tcp"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"https://{host}{port}{self.path}"

    @model_validator(mode="before")
    @classmethod
    def _url_and_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        url = data.pop("url", None)
        if url is not None:
            if not isinstance(url, str):
                raise ValueError("url must be text")
            for key, value in split_url(url).items():
                data.setdefault(key, value)
        path = data.get("auth_user_pass")
        if path is not None and data.get("username") is None:
            data["username"], data["password"] = read_auth_user_pass(Path(path))
        return data

    @field_validator("servercert")
    @classmethod
    def _pin_is_sha256(cls, pin: str | None) -> str | None:
        if pin is None:
            return None
        pin = pin.strip()
        encoded = pin.removeprefix(PIN_PREFIX)
        try:
            digest = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if not pin.startswith(PIN_PREFIX) or len(digest) != 32:
            raise ValueError(
                "must be pin-sha256: and the base64 SHA-256 of the server's public key,"
                " as openconnect prints it"
            )
        return pin

    @model_validator(mode="after")
    def _consistent(self) -> AnyConnectTarget:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together: give both or neither")
        if self.cert is not None and self.key is not None:
            check_key_matches(self.cert, self.key.get_secret_value())
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self
