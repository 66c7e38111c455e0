"""An OpenVPN server to probe, with what a client config (.ovpn) says about reaching it.

Everything is checked at load: certificates and keys must parse, a wrapping mode must come with a
key of the right shape, and ``auth_user_pass`` is read then, so a probe never meets a bad file.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyAddress, SecretBytes, SecretStr, field_validator, model_validator

from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.protocols.openvpn.datachannel import CIPHERS
from vpnwatch.protocols.openvpn.names import X509NameType
from vpnwatch.protocols.openvpn.push import (
    DEFAULT_TUN_MTU_MAX,
    AllowCompression,
    PullFilterAction,
)
from vpnwatch.protocols.openvpn.wrappers import (
    DIGESTS,
    STATIC_KEY_SIZE,
    KeyFileError,
    WrapKind,
    check_tls_crypt_v2_client_key,
    parse_static_key,
    parse_tls_crypt_v2_client_key,
)
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.pem import Certificate, Certificates, Crls, PrivateKey

DEFAULT_PORT = 1194
TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
CertProfile = Literal["insecure", "legacy", "preferred", "suiteb"]
_STATIC_KEY_MARK = "OpenVPN Static key V1"
_V2_CLIENT_KEY_MARK = "OpenVPN tls-crypt-v2 client key"


def read_auth_user_pass(path: Path) -> tuple[str, str]:
    """Username and password from an OpenVPN ``auth-user-pass`` file (two lines).

    Raises ValueError naming the file and the problem, never its content.
    """
    try:
        lines = read_text(path).splitlines()
    except UnreadableFile as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if len(lines) < 2 or not lines[0].strip() or not lines[1]:
        raise ValueError(f"{path} must hold a username line and a password line")
    return lines[0].strip(), lines[1]


class OpenVPNTarget(TargetBase):
    """One OpenVPN remote (host, port and transport) and the credentials to handshake with it."""

    protocol: Literal["openvpn"] = "openvpn"
    proto: Literal["udp", "tcp"] = "udp"
    #: ``udp4``/``tcp6``…: only addresses of this IP version; None: the first the name has.
    ip_version: Literal[4, 6] | None = None
    #: PEM certificates the server's chain must lead to (the config's ``<ca>``); None with
    #: ``peer_fingerprint`` alone (a self-signed server).
    ca: Certificates | None = Field(default=None, min_length=1, repr=False)
    #: SHA-256 fingerprints (``AB:CD:…``), one of which the server's certificate must have.
    peer_fingerprint: tuple[str, ...] = ()
    #: Client certificate and key (PEM), for servers that require one.
    cert: Certificate | None = Field(default=None, repr=False)
    #: The client certificate's chain (intermediate CAs, PEM), sent after it.
    extra_certs: Certificates | None = Field(default=None, repr=False)
    key: PrivateKey | None = None
    tls_wrap: WrapKind = "none"
    #: The tls-auth/tls-crypt static key (256 bytes) or the tls-crypt-v2 client key; PEM text
    #: (the key file's content) is accepted and decoded.
    tls_key: SecretBytes | None = None
    #: tls-auth's key-direction; None means the key is used in both directions.
    key_direction: Literal[0, 1] | None = None
    #: Digest of tls-auth HMACs (``auth``).
    auth: str = "SHA1"
    verify_x509_name: str | None = None
    verify_x509_type: X509NameType = "subject"
    remote_cert_tls: Literal["server"] | None = None
    #: Ciphers offered for the data channel; a pushed cipher must be one of them.
    data_ciphers: str = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"
    data_ciphers_fallback: str | None = None
    #: Whether pushed compression is accepted; 2.6's default ``no`` takes stub framing only.
    allow_compression: AllowCompression = "no"
    #: ``pull-filter`` lines: (accept|ignore|reject, text a pushed option starts with).
    pull_filter: tuple[tuple[PullFilterAction, str], ...] = ()
    tun_mtu_max: int = Field(default=DEFAULT_TUN_MTU_MAX, ge=68, le=65536)
    tls_version_min: TlsVersion = "1.2"
    tls_version_min_or_highest: bool = False
    tls_version_max: TlsVersion | None = None
    tls_cipher: str | None = None
    tls_ciphersuites: str | None = None
    tls_groups: str | None = None
    tls_cert_profile: CertProfile = "legacy"
    #: ``crl-verify``: PEM CRLs the server's certificate must not be revoked by.
    crl_verify: Crls | None = Field(default=None, repr=False)
    #: Where a tunnel test's echoes go instead of the server's pushed tunnel address.
    ping: IPvAnyAddress | None = None
    #: A two-line username/password file; read at load into ``username`` and ``password``.
    auth_user_pass: Path | None = None
    username: str | None = None
    password: SecretStr | None = None

    @property
    def transport(self) -> str:
        return self.proto

    @property
    def tunnel_ready(self) -> bool:
        """Always: the server pushes the addresses a tunnel test needs (``ifconfig``)."""
        return True

    @property
    def address_family(self) -> socket.AddressFamily:
        if self.ip_version is None:
            return socket.AF_UNSPEC
        return socket.AF_INET6 if self.ip_version == 6 else socket.AF_INET

    @model_validator(mode="before")
    @classmethod
    def _load_files_and_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        path = data.get("auth_user_pass")
        if path is not None and data.get("username") is None:
            data["username"], data["password"] = read_auth_user_pass(Path(path))
        key = data.get("tls_key")
        if isinstance(key, SecretStr):
            key = key.get_secret_value()
        if isinstance(key, str):
            data["tls_key"] = _decode_key_text(key)
        return data

    @field_validator("peer_fingerprint")
    @classmethod
    def _fingerprints(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normal_fingerprint(value) for value in values)

    @field_validator("data_ciphers_fallback")
    @classmethod
    def _known_fallback(cls, cipher: str | None) -> str | None:
        if cipher is not None and cipher.upper() not in CIPHERS:
            raise ValueError(f"data cipher must be one of {', '.join(sorted(CIPHERS))}")
        return cipher.upper() if cipher is not None else None

    @field_validator("auth")
    @classmethod
    def _known_digest(cls, digest: str) -> str:
        normal = digest.upper().replace("-", "")
        if normal not in DIGESTS:
            raise ValueError(f"digest must be one of {', '.join(DIGESTS)}")
        return normal

    @model_validator(mode="after")
    def _consistent(self) -> OpenVPNTarget:
        if self.ca is None and not self.peer_fingerprint:
            raise ValueError(
                "ca or peer_fingerprint: the server's certificate needs one to be checked"
            )
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together: give both or neither")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.tls_wrap == "none":
            if self.tls_key is not None:
                raise ValueError("tls_key is set but tls_wrap is 'none'")
            return self
        if self.tls_key is None:
            raise ValueError(f"tls_wrap {self.tls_wrap!r} needs tls_key")
        raw = self.tls_key.get_secret_value()
        if self.tls_wrap == "tls-crypt-v2":
            try:
                check_tls_crypt_v2_client_key(raw)
            except KeyFileError as exc:
                raise ValueError(f"tls_key: {exc}") from None
        elif len(raw) != STATIC_KEY_SIZE:
            raise ValueError(f"tls_key for {self.tls_wrap} must be an OpenVPN static key")
        return self


def _decode_key_text(text: str) -> bytes:
    try:
        if _V2_CLIENT_KEY_MARK in text:
            return parse_tls_crypt_v2_client_key(text)
        if _STATIC_KEY_MARK in text:
            return parse_static_key(text)
    except KeyFileError as exc:
        raise ValueError(f"tls_key {exc}") from None
    raise ValueError("tls_key is neither an OpenVPN static key nor a tls-crypt-v2 client key")


def normal_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as OpenVPN writes it (``AB:CD:…``, 32 bytes); raises ValueError."""
    digits = text.replace(":", "").strip()
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise ValueError("is not hex bytes separated by ':'") from None
    if len(raw) != 32:
        raise ValueError(f"is {len(raw)} bytes, not a SHA-256 digest (32)")
    return raw.hex(":").upper()
