"""The .ovpn importer: remotes, inline and file material, credentials, and one-line errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.openvpn import Pki, generate_pki
from vpnwatch.targets.openvpn import OpenVPNTarget

STATIC_KEY = (
    "-----BEGIN OpenVPN Static key V1-----\n"
    + "\n".join(bytes(range(i, i + 16)).hex() for i in range(0, 256, 16))
    + "\n-----END OpenVPN Static key V1-----\n"
)
PASSWORD = "hunter2-not-shown"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return generate_pki()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_provider_style_file_with_inline_material(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    config = write(
        tmp_path / "nl-ams.ovpn",
        "client\ndev tun\nproto udp4\nremote vpn.example.invalid 1195\nresolv-retry infinite\n"
        "nobind\npersist-key\ncipher AES-256-CBC\nauth SHA256\nkey-direction 1\n"
        "remote-cert-tls server\nverify-x509-name server1 name\n"
        f"<ca>\n{pki.ca}</ca>\n<cert>\n{pki.client_cert}</cert>\n<key>\n{pki.client_key}</key>\n"
        f"<tls-auth>\n{STATIC_KEY}</tls-auth>\n",
    )
    with caplog.at_level(logging.DEBUG, logger="vpnwatch.importers.ovpn"):
        (target,) = load_ovpn(config)
    assert (target.name, target.host, target.port, target.transport) == (
        "nl-ams",
        "vpn.example.invalid",
        1195,
        "udp",
    )
    assert target.tls_wrap == "tls-auth" and target.key_direction == 1 and target.auth == "SHA256"
    assert target.tls_key is not None and target.tls_key.get_secret_value() == bytes(range(256))
    assert (target.verify_x509_name, target.verify_x509_type) == ("server1", "name")
    assert target.remote_cert_tls == "server"
    # openvpn 2.6 leaves --cipher out of the negotiation ("DEPRECATED OPTION: --cipher set to
    # 'AES-256-CBC' but missing in --data-ciphers"); the interop suite holds it to that.
    assert target.data_ciphers == "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"
    assert "ignoring resolv-retry" in caplog.text
    assert pki.client_key.splitlines()[1] not in repr(target)


def test_every_remote_is_a_target(tmp_path: Path, pki: Pki) -> None:
    config = write(
        tmp_path / "multi.ovpn",
        "proto tcp-client\nport 443\nremote a.example.invalid\nremote b.example.invalid 1194 udp\n"
        "remote 2001:db8::1 8443\n"
        f"<ca>\n{pki.ca}</ca>\n",
    )
    targets = load_ovpn(config)
    assert [(t.name, t.port, t.proto) for t in targets] == [
        ("multi/a.example.invalid:443", 443, "tcp"),
        ("multi/b.example.invalid:1194", 1194, "udp"),
        ("multi/[2001:db8::1]:8443", 8443, "tcp"),
    ]


def test_files_are_relative_to_the_config(tmp_path: Path, pki: Pki) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    write(keys / "ca.crt", pki.ca)
    write(keys / "tc.key", STATIC_KEY)
    write(keys / "up.txt", f"probe\n{PASSWORD}\n")
    config = write(
        tmp_path / "files.ovpn",
        'remote 198.18.0.1\nca "keys/ca.crt"\ntls-crypt keys/tc.key\nauth-user-pass keys/up.txt\n',
    )
    (target,) = load_ovpn(config)
    assert target.tls_wrap == "tls-crypt" and target.ca == pki.ca
    assert target.username == "probe"
    assert target.password is not None and target.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(target) and PASSWORD not in target.model_dump_json()


def test_tls_auth_direction_on_the_same_line(tmp_path: Path, pki: Pki) -> None:
    write(tmp_path / "ta.key", STATIC_KEY)
    config = write(
        tmp_path / "c.ovpn", f"remote h.invalid\ntls-auth ta.key 0\n<ca>\n{pki.ca}</ca>\n"
    )
    (target,) = load_ovpn(config)
    assert target.key_direction == 0


def test_credentials_from_the_caller_override_the_file(tmp_path: Path, pki: Pki) -> None:
    up = write(tmp_path / "cli.txt", f"cli-user\n{PASSWORD}\n")
    config = write(tmp_path / "c.ovpn", f"remote h.invalid\nauth-user-pass\n<ca>\n{pki.ca}</ca>\n")
    (target,) = load_ovpn(config, auth_user_pass=up)
    assert target.username == "cli-user"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("verb 3\n", None, "has no remote directive"),
        ("remote h.invalid 99999\n", "line 1: remote", "port is not a number"),
        ("remote h.invalid\nproto tcp-server\n", "line 2: proto", "not a client transport"),
        ("remote h.invalid\nca missing.crt\n", "line 2: ca", "cannot read"),
        (
            "remote h.invalid\n<ca>\nnot pem\n</ca>\n",
            "line 2: <ca>",
            "ca: is not a PEM certificate",
        ),
        ("remote h.invalid\n<ca>\nnever closed\n", "line 2", "<ca> is never closed"),
        ("remote h.invalid\nauth-user-pass\n", "line 2: auth-user-pass", "names no file"),
        ("remote h.invalid\npkcs12 x.p12\n", "line 2: pkcs12", "cannot read"),
        ("remote h.invalid\nkey-direction 2\n", "line 2: key-direction", "0 or 1"),
        ("remote h.invalid\nremote-cert-tls client\n", "line 2: remote-cert-tls", "server"),
        ('remote "h.invalid\n', "line 1", "cannot split"),
    ],
)
def test_errors_name_the_line_and_directive(
    tmp_path: Path, text: str, where: str | None, message: str
) -> None:
    config = write(tmp_path / "bad.ovpn", text)
    with pytest.raises(ConfigError) as caught:
        load_ovpn(config)
    assert caught.value.where == where
    assert message in caught.value.message
    assert str(config) in str(caught.value)


def test_bad_key_material_never_echoes_secrets(tmp_path: Path, pki: Pki) -> None:
    secret_line = "00112233445566778899aabbccddeeff"
    config = write(
        tmp_path / "k.ovpn",
        f"remote h.invalid\n<ca>\n{pki.ca}</ca>\n<tls-crypt>\n"
        f"-----BEGIN OpenVPN Static key V1-----\n{secret_line}\n-----END OpenVPN Static key V1-----\n"
        "</tls-crypt>\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_ovpn(config)
    assert "16 bytes, not 256" in str(caught.value)
    assert secret_line not in str(caught.value)


def test_unreadable_credentials_file_is_one_line(tmp_path: Path, pki: Pki) -> None:
    config = write(
        tmp_path / "c.ovpn", f"remote h.invalid\nauth-user-pass nope.txt\n<ca>\n{pki.ca}</ca>\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_ovpn(config)
    assert "nope.txt" in str(caught.value) and "\n" not in str(caught.value)


def test_encrypted_client_key_is_refused(tmp_path: Path, pki: Pki) -> None:
    key = serialization.load_pem_private_key(pki.client_key.encode(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    config = write(
        tmp_path / "c.ovpn",
        f"remote h.invalid\n<ca>\n{pki.ca}</ca>\n<cert>\n{pki.client_cert}</cert>\n<key>\n{encrypted}</key>\n",
    )
    with pytest.raises(ConfigError, match="encrypted"):
        load_ovpn(config)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tls_wrap": "tls-crypt"}, "needs tls_key"),
        ({"tls_key": STATIC_KEY}, "tls_wrap is 'none'"),
        ({"cert": "CERT"}, "cert"),
        ({"auth": "SHA3-999"}, "digest must be one of"),
        ({"username": "u"}, "username and password go together"),
    ],
)
def test_target_model_rejects_inconsistent_fields(
    pki: Pki, fields: dict[str, str], message: str
) -> None:
    base = {"name": "t", "host": "h.invalid", "port": 1194, "ca": pki.ca}
    if fields.get("cert") == "CERT":
        fields = {"cert": pki.client_cert}
    with pytest.raises(ValidationError) as caught:
        OpenVPNTarget.model_validate(base | fields)
    assert message in describe_validation_error(caught.value)
