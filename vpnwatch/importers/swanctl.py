"""strongSwan ``swanctl.conf`` → IKEv2 targets: one per connection with a remote address.

What a road-warrior connection says is what the probe needs::

    connections {
      office {
        remote_addrs = vpn.example.net
        proposals = aes256gcm16-prfsha256-ecp256
        local {
          auth = eap-mschapv2
          eap_id = alice
        }
        remote {
          auth = pubkey
          id = vpn.example.net
          cacerts = office-ca.pem
        }
      }
      }
    }
    secrets {
      eap-alice {
        id = alice
        secret = "…"
      }
    }

Certificates and keys are found as swanctl finds them, in ``x509/``, ``x509ca/`` and
``private/`` (or ``rsa/``, ``ecdsa/``, ``pkcs8/``) beside the file; secrets come from its
``secrets`` section. Key exchange groups come from ``proposals``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.imported import Imported, Skipped
from vpnwatch.targets.ikev2 import DEFAULT_PORT, IKEv2Target

Section = dict[str, "str | Section"]

#: strongSwan's names of the key exchange groups vpnwatch offers.
GROUP_NAMES = {"modp2048": 14, "ecp256": 19, "ecp384": 20, "curve25519": 31, "x25519": 31}
_KEY_DIRS = ("private", "pkcs8", "ecdsa", "rsa")
_VALUE = re.compile(r'[ \t]*(?:(?P<quoted>"(?:[^"\\\n]|\\.)*")|(?P<plain>[^\n#}]*))')
_TOKEN = re.compile(
    r'[ \t\r]*(?:(?P<comment>#[^\n]*)|(?P<open>\{)|(?P<close>\})|(?P<quoted>"(?:[^"\\\n]|\\.)*")'
    r'|(?P<word>[^\s{}=#"]+)|(?P<assign>=)|(?P<newline>\n))'
)


class SettingsError(ValueError):
    """strongSwan settings syntax that does not parse; the message names the line."""


class _Unprobed(ValueError):
    """A connection valid for strongSwan that a road warrior's probe cannot make: skipped."""


def parse_settings(text: str) -> Section:
    """strongSwan's settings syntax: ``name { … }`` sections and ``key = value`` lines.

    A value runs to the end of its line (or a closing brace); quoted values keep their spaces.
    """
    root: Section = {}
    stack = [root]
    tokens = list(_tokens(text))
    index = 0
    while index < len(tokens):
        kind, value, line = tokens[index]
        index += 1
        if kind == "newline":
            continue
        if kind == "close":
            if len(stack) == 1:
                raise SettingsError(f"line {line}: unexpected '}}'")
            stack.pop()
            continue
        if kind != "word":
            raise SettingsError(f"line {line}: expected a name, found {kind!r}")
        follow = tokens[index][0] if index < len(tokens) else "newline"
        index += 1
        if follow == "open":
            existing = stack[-1].get(value)
            section: Section = existing if isinstance(existing, dict) else {}
            stack[-1][value] = section
            stack.append(section)
        elif follow == "assign":
            stack[-1][value] = tokens[index][1]
            index += 1
        elif value == "include":
            raise SettingsError(f"line {line}: include is not supported; put it in one file")
        else:
            raise SettingsError(f"line {line}: expected '=' or '{{' after {value!r}")
    if len(stack) != 1:
        raise SettingsError("a section is not closed with '}'")
    return root


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(kind, value, line) of each token: word, open, close, assign, newline."""
    line, offset = 1, 0
    while offset < len(text):
        match = _TOKEN.match(text, offset)
        if match is None:
            if not text[offset:].strip():
                return
            raise SettingsError(f"line {line}: cannot read what follows")
        offset = match.end()
        kind = match.lastgroup
        if kind == "newline":
            yield "newline", "", line
            line += 1
        elif kind == "quoted":
            yield "word", re.sub(r"\\(.)", r"\1", match.group(kind)[1:-1]), line
        elif kind in ("word", "open", "close"):
            yield kind, match.group(kind) if kind == "word" else "", line
        elif kind == "assign":
            # The value runs to the end of the line, a comment or a closing brace.
            yield "assign", "", line
            value = _VALUE.match(text, offset)
            assert value is not None  # the pattern matches the empty string too
            offset = value.end()
            quoted = value.group("quoted")
            text_value = re.sub(r"\\(.)", r"\1", quoted[1:-1]) if quoted else value.group("plain")
            yield "value", text_value.strip(), line


def _decode_secret(value: str) -> str:
    """A swanctl secret: text, ``0x`` hexadecimal or ``0s`` base64 (decoded to text)."""
    try:
        if value.startswith("0x"):
            return bytes.fromhex(value[2:]).decode()
        if value.startswith("0s"):
            return base64.b64decode(value[2:], validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("a secret in 0x or 0s form that is not text vpnwatch can use") from None
    return value


def _secrets(root: Section) -> list[tuple[str, set[str], str]]:
    """(kind, ids, secret) of every ``ike-*`` and ``eap-*`` secret."""
    found = []
    section = root.get("secrets", {})
    for name, body in section.items() if isinstance(section, dict) else ():
        if not isinstance(body, dict) or "secret" not in body:
            continue
        kind = name.split("-", 1)[0]
        ids = {str(v) for k, v in body.items() if k == "id" or k.startswith("id-")}
        found.append((kind, ids, _decode_secret(str(body["secret"]))))
    return found


def proposal_groups(proposals: str) -> tuple[int, ...] | None:
    """The groups named in ``proposals`` that vpnwatch offers; None for the defaults."""
    names = [part for proposal in proposals.split(",") for part in proposal.strip().split("-")]
    if names == ["default"] or not proposals.strip():
        return None
    groups = tuple(dict.fromkeys(GROUP_NAMES[n] for n in names if n in GROUP_NAMES))
    if not groups:
        raise ValueError(
            f"proposals name no key exchange group vpnwatch offers ({', '.join(GROUP_NAMES)})"
        )
    return groups


def _sub(section: Section, prefix: str) -> Section:
    """The ``local``/``remote`` round: the first section named so or ``prefix-*``."""
    for name, body in section.items():
        if (name == prefix or name.startswith(prefix + "-")) and isinstance(body, dict):
            return body
    return {}


def _read(path: Path, what: str) -> str:
    try:
        return read_text(path)
    except UnreadableFile as exc:
        raise ValueError(f"{what} {path.name}: {exc}") from None


def _file_in(base: Path, dirs: tuple[str, ...], name: str) -> Path:
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    for directory in dirs:
        if (base / directory / name).is_file():
            return base / directory / name
    return base / dirs[0] / name


def _private_key_for(base: Path, cert_pem: str) -> str:
    """The key in swanctl's key directories whose public half is the certificate's."""
    from cryptography import x509  # noqa: PLC0415 - only files with certificates pay for it
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    wanted = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    spki = wanted.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    for directory in _KEY_DIRS:
        for path in sorted((base / directory).glob("*")) if (base / directory).is_dir() else ():
            text = _read(path, "key")
            try:
                key = load_pem_private_key(text.encode(), password=None)
            except (ValueError, TypeError):
                continue
            if (
                key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                == spki
            ):
                return text
    raise ValueError("no private key in private/ matches the certificate in local.certs")


def _connection(base: Path, name: str, body: Section, root: Section) -> dict[str, object]:
    """The target fields of one connection; ValueError for what the probe cannot use."""
    addresses = [a.strip() for a in str(body.get("remote_addrs", "")).split(",") if a.strip()]
    if not addresses or addresses[0] in ("%any", "%any4", "%any6"):
        raise _Unprobed("remote_addrs names no gateway to dial (a responder's connection)")
    local, remote = _sub(body, "local"), _sub(body, "remote")
    fields: dict[str, object] = {
        "host": addresses[0].strip("%"),
        "port": int(str(body.get("remote_port", DEFAULT_PORT))),
    }
    if groups := proposal_groups(str(body.get("proposals", "default"))):
        fields["groups"] = groups
    local_auth = str(local.get("auth", "pubkey"))
    remote_auth = str(remote.get("auth", "pubkey"))
    local_id = local.get("id")
    remote_id = remote.get("id")
    if isinstance(local_id, str) and local_id != "%any":
        fields["local_id"] = local_id
    if isinstance(remote_id, str) and remote_id != "%any":
        fields["remote_id"] = remote_id
    secrets = _secrets(root)
    if local_auth == "psk" or remote_auth == "psk":
        ids = {str(local_id), str(remote_id)}
        match = [s for kind, owners, s in secrets if kind == "ike" and (not owners or owners & ids)]
        if not match:
            raise ValueError("auth = psk but no ike secret in the secrets section names these ids")
        fields["psk"] = match[0]
    if local_auth == "pubkey":
        certs = str(local.get("certs", "")).split(",")[0].strip()
        if not certs:
            raise ValueError("local auth = pubkey needs local.certs")
        cert = _read(_file_in(base, ("x509",), certs), "certificate")
        fields["cert"] = cert
        fields["key"] = _private_key_for(base, cert)
    elif local_auth in ("eap", "eap-mschapv2"):
        user = str(local.get("eap_id", local_id or ""))
        match = [s for kind, owners, s in secrets if kind == "eap" and user in owners]
        if not user or not match:
            raise ValueError(
                "EAP needs local.eap_id and an eap secret in the secrets section for it"
            )
        fields["username"], fields["password"] = user, match[0]
    elif local_auth != "psk":
        raise _Unprobed(f"local auth = {local_auth}: vpnwatch speaks psk, pubkey and eap-mschapv2")
    if remote_auth == "pubkey":
        cacerts = [c.strip() for c in str(remote.get("cacerts", "")).split(",") if c.strip()]
        paths = [_file_in(base, ("x509ca",), c) for c in cacerts]
        if not paths and (base / "x509ca").is_dir():
            paths = sorted((base / "x509ca").glob("*"))
        if not paths:
            raise ValueError("remote auth = pubkey needs remote.cacerts or certificates in x509ca/")
        fields["ca"] = "".join(_read(path, "CA certificate") for path in paths)
    elif remote_auth != "psk":
        raise _Unprobed(f"remote auth = {remote_auth}: vpnwatch checks pubkey and psk")
    fields["remote_auth"] = remote_auth
    return fields


def load_swanctl(path: Path) -> Imported:
    """One IKEv2 target per connection of a swanctl.conf, and the connections it skips;
    ConfigError naming the connection for what strongSwan would refuse too."""
    try:
        root = parse_settings(read_text(path))
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
    except SettingsError as exc:
        raise ConfigError(str(exc), source=path) from None
    connections = root.get("connections")
    if not isinstance(connections, dict) or not connections:
        raise ConfigError("no connections section with a connection", source=path)
    targets, skipped = [], []
    for name, body in connections.items():
        where = f"connections.{name}"
        if not isinstance(body, dict):
            raise ConfigError("is a value, not a connection section", source=path, where=where)
        try:
            fields = _connection(path.parent, name, body, root)
            target_name = path.stem if len(connections) == 1 else f"{path.stem}/{name}"
            targets.append(IKEv2Target.model_validate({"name": target_name, **fields}))
        except _Unprobed as exc:
            skipped.append(Skipped(str(path), where, "IKEv2 connection", str(exc)))
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc), source=path, where=where) from None
        except ValueError as exc:
            raise ConfigError(str(exc), source=path, where=where) from None
    return Imported(targets, skipped)
