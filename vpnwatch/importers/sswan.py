"""strongSwan's ``.sswan`` profiles (the Android and managed-device format) → an IKEv2 target.

A profile is JSON: the gateway (``remote.addr``, ``port``, ``id``, its CA as ``remote.cert``),
the login (``type`` ``ikev2-eap`` with ``local.eap_id``, or ``ikev2-cert`` with a PKCS#12 in
``local.p12``) and optional ``ike-proposal``. Profiles never carry the EAP password: like the
app, which asks for it, vpnwatch takes it from ``--auth-user-pass FILE`` (username and password
lines) or a ``password_file`` in the YAML.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.swanctl import proposal_groups
from vpnwatch.targets.ikev2 import DEFAULT_PORT, IKEv2Target
from vpnwatch.targets.openvpn import read_auth_user_pass

#: Profile types vpnwatch can probe: EAP-MSCHAPv2 logins and certificate logins.
EAP_TYPES = ("ikev2-eap", "ikev2-cert-eap")
CERT_TYPES = ("ikev2-cert",)


def _pem_of(text: str, what: str) -> str:
    """A certificate given as PEM or as base64 DER (as profiles embed it), as PEM text."""
    if "-----BEGIN" in text:
        return text
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is neither PEM nor base64") from None
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def _p12(text: str) -> tuple[str, str]:
    """(certificate PEM, key PEM) of an unencrypted base64 PKCS#12."""
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415 - certificate profiles only
        Encoding,
        NoEncryption,
        PrivateFormat,
        pkcs12,
    )

    try:
        key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(text), None)
    except (binascii.Error, ValueError):
        raise ValueError(
            "local.p12 is not an unencrypted PKCS#12: export the certificate and key, and give "
            "them as cert_file and key_file"
        ) from None
    if key is None or cert is None:
        raise ValueError("local.p12 holds no certificate and key")
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return cert.public_bytes(Encoding.PEM).decode(), key_pem


def _fields(profile: dict[str, object], auth_user_pass: Path | None) -> dict[str, object]:
    remote, local = profile.get("remote"), profile.get("local", {})
    if not isinstance(remote, dict) or not isinstance(local, dict):
        raise ValueError("remote and local must be objects")
    kind = profile.get("type")
    if not isinstance(remote.get("addr"), str) or not remote["addr"]:
        raise ValueError("remote.addr names no gateway")
    fields: dict[str, object] = {
        "host": remote["addr"],
        "port": remote.get("port", DEFAULT_PORT),
        "remote_id": remote.get("id", remote["addr"]),
        "remote_auth": "pubkey",
    }
    if not isinstance(remote.get("cert"), str):
        raise ValueError(
            "remote.cert (the gateway's CA) is missing: vpnwatch checks the gateway against the "
            "CA the profile names, not a system store"
        )
    fields["ca"] = _pem_of(str(remote["cert"]), "remote.cert")
    if isinstance(profile.get("ike-proposal"), str) and (
        groups := proposal_groups(str(profile["ike-proposal"]))
    ):
        fields["groups"] = groups
    if kind in EAP_TYPES:
        if auth_user_pass is None:
            raise ValueError(
                "an EAP profile holds no password: give it with --auth-user-pass FILE "
                "(or password_file in the YAML)"
            )
        username, password = read_auth_user_pass(auth_user_pass)
        fields["username"] = local.get("eap_id", username)
        fields["password"] = password
    elif kind in CERT_TYPES:
        if not isinstance(local.get("p12"), str):
            raise ValueError("an ikev2-cert profile needs local.p12")
        fields["cert"], fields["key"] = _p12(str(local["p12"]))
        if isinstance(local.get("id"), str):
            fields["local_id"] = local["id"]
    else:
        known = ", ".join(EAP_TYPES + CERT_TYPES)
        raise ValueError(f"type {kind!r} is not one vpnwatch probes ({known})")
    if isinstance(local.get("id"), str):
        fields["local_id"] = local["id"]
    return fields


def load_sswan(path: Path, auth_user_pass: Path | None = None) -> list[IKEv2Target]:
    """The profile's one IKEv2 target; ConfigError naming the problem."""
    try:
        profile = json.loads(read_text(path))
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
    except ValueError:
        raise ConfigError("is not JSON, as .sswan profiles are", source=path) from None
    if not isinstance(profile, dict):
        raise ConfigError("is not a JSON object", source=path)
    try:
        fields = _fields(profile, auth_user_pass)
        return [IKEv2Target.model_validate({"name": path.stem, **fields})]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), source=path) from None
    except ValueError as exc:
        raise ConfigError(str(exc), source=path) from None
