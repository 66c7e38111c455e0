"""What every target has, whatever its protocol.

Targets are validated once, when they are loaded; probes and the scheduler trust them afterwards.
Secrets are held as :class:`pydantic.SecretBytes` or :class:`pydantic.SecretStr` so that neither
``repr``, logging nor JSON serialisation can print them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretBytes,
    field_validator,
)

from vpnwatch.printable import is_printable_name
from vpnwatch.quality import TunnelPlan, overridden

#: Labels vpnwatch itself sets on every series; a user's own labels may not reuse them.
RESERVED_LABELS = frozenset(
    {
        "target",
        "protocol",
        "endpoint",
        "transport",
        "failure",
        "stage",
        "phase",
        "reason",
        "role",
        "verdict",
        "vpnwatch_verdict",
        "le",
        "instance",
        "job",
    }
)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: The longest a target may wait between probes: one probed less often is not being monitored.
MAX_INTERVAL = 86_400.0
#: The longest a probe may take; no handshake needs an hour.
MAX_TIMEOUT = 3_600.0

Role = Literal["target", "control"]


def _printable_name(value: str) -> str:
    """Names are printable text: no control, format or separator characters, no outer blanks.

    Names reach logs, terminals, metric labels and reports; a newline in one would forge a log
    line and an escape sequence would rewrite the terminal. The message does not repeat the
    value, which is exactly what must not be printed.
    """
    if not is_printable_name(value):
        raise ValueError(
            "must be printable text (letters, digits, punctuation, symbols and inner spaces of"
            " any script; no control characters, line breaks or leading/trailing spaces)"
        )
    return value


def _hostname_text(value: str) -> str:
    if not value.isprintable() or any(ch.isspace() for ch in value):
        raise ValueError("must be a host name or address, without spaces or control characters")
    return value


#: A target's name or a label value: see :func:`_printable_name`.
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable_name)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class TargetBase(BaseModel):
    """Fields shared by all targets; subclasses narrow ``protocol`` to a literal and add theirs."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    protocol: str
    name: Name
    host: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_hostname_text)]
    port: Annotated[int, Field(ge=1, le=65535)]
    labels: dict[str, Annotated[str, Field(max_length=200), AfterValidator(_printable_name)]] = (
        Field(default_factory=dict)
    )
    interval: Annotated[Seconds, Field(le=MAX_INTERVAL)] | None = None
    timeout: Annotated[Seconds, Field(le=MAX_TIMEOUT)] | None = None
    role: Role = "target"
    #: Tunnel tests: False turns them off; a mapping overrides ``settings.tunnel`` and the site's
    #: (``interval``, ``timeout``, ``train: {...}``, ``thresholds: {...}``).
    tunnel: bool | dict[str, Any] = True

    @field_validator("tunnel")
    @classmethod
    def _tunnel_overrides_validate(cls, tunnel: bool | dict[str, Any]) -> bool | dict[str, Any]:
        if isinstance(tunnel, dict):
            overridden(TunnelPlan(), tunnel)  # unknown fields and bad values: now, not later
        return tunnel

    @field_validator("labels")
    @classmethod
    def _labels_are_not_reserved(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not _LABEL_NAME.match(key) or key.startswith("__"):
                raise ValueError(f"label {key!r} is not a valid Prometheus label name")
            if key in RESERVED_LABELS:
                raise ValueError(f"label {key!r} is reserved by vpnwatch and cannot be set")
        return labels

    @property
    def transport(self) -> str:
        """``udp`` or ``tcp``: how the probe reaches the endpoint."""
        raise NotImplementedError

    @property
    def address_family(self) -> socket.AddressFamily:
        """The IP version the endpoint must be reached over (``AF_UNSPEC``: any)."""
        return socket.AF_UNSPEC

    @property
    def tunnel_ready(self) -> bool:
        """Whether the target says enough to test its tunnel (addresses inside it, for one):
        then ``check`` and the monitor run tunnel tests on it."""
        return False

    @property
    def endpoint(self) -> str:
        """``host:port``, with IPv6 literals bracketed, as users write endpoints."""
        return format_endpoint(self.host, self.port)


def format_endpoint(host: str, port: int) -> str:
    """``host:port``, bracketing the host if it has a colon: only an IPv6 literal has one.

    (A scrape writes every target's endpoint; parsing the address here cost more than the rest of
    its info line.)
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_endpoint(text: str, default_port: int | None = None) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port`` or ``v4``/``name`` (with ``default_port``).

    Raises ValueError with a message fit for the user that never repeats the text: it may be a
    key pasted on the wrong line.
    """
    text = text.strip()
    port_text: str | None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("has an unclosed '['")
        if rest and not rest.startswith(":"):
            raise ValueError("has text after ']' that is not ':port'")
        port_text = rest[1:] if rest else None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("is not an IPv6 address within [ ]") from None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:
        raise ValueError("has several ':': write IPv6 addresses as [address]:port")
    else:
        host, port_text = text, None
    if not host:
        raise ValueError("has no host")
    if port_text is None:
        if default_port is None:
            raise ValueError("has no port")
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("has a port that is not a number from 1 to 65535")
    return host, int(port_text)


def decode_key32(value: str | bytes | SecretBytes) -> bytes:
    """Decode a base64 32-byte key (WireGuard and X25519 keys are written this way).

    The message never repeats the value: it may be a private key.
    """
    if isinstance(value, SecretBytes):
        value = value.get_secret_value()
    if isinstance(value, bytes) and len(value) == 32:
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, not 32")
    return raw


def _secret_key32(value: object) -> object:
    if isinstance(value, (str, bytes, SecretBytes)):
        return SecretBytes(decode_key32(value))
    return value


def _public_key32(value: object) -> object:
    if isinstance(value, (str, bytes)):
        return decode_key32(value)
    return value


#: A 32-byte public key, written in base64 in files and in JSON.
PublicKey32 = Annotated[
    bytes,
    BeforeValidator(_public_key32),
    PlainSerializer(lambda raw: base64.b64encode(raw).decode(), return_type=str),
]
#: A 32-byte private or preshared key, written in base64 in files and never shown.
SecretKey32 = Annotated[SecretBytes, BeforeValidator(_secret_key32)]
