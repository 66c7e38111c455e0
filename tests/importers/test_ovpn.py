"""The .ovpn importer: remotes, inline and file material, credentials, and one-line errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.openvpn import Pki, generate_pki
from vpnwatch.lab.pki import CertificateAuthority
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


# -- what openvpn 2.6 accepts (issue 15) ---------------------------------------------------------


@pytest.fixture(scope="module")
def chain() -> dict[str, str]:
    """A client certificate from an intermediate CA, its key, the intermediate and the root."""
    root = CertificateAuthority.create("root")
    inter = root.intermediate("intermediate")
    client = inter.issue("client", server=False)
    return {"root": root.cert, "inter": inter.cert, "cert": client.cert, "key": client.key}


def test_extra_certs_and_chains_in_cert_files(tmp_path: Path, chain: dict[str, str]) -> None:
    inline = write(
        tmp_path / "inline.ovpn",
        f"remote h.invalid\n<ca>\n{chain['root']}</ca>\n<cert>\n{chain['cert']}</cert>\n"
        f"<key>\n{chain['key']}</key>\n<extra-certs>\n{chain['inter']}</extra-certs>\n",
    )
    write(tmp_path / "chain.crt", chain["cert"] + chain["inter"])
    write(tmp_path / "c.key", chain["key"])
    in_file = write(
        tmp_path / "file.ovpn",
        f"remote h.invalid\n<ca>\n{chain['root']}</ca>\ncert chain.crt\nkey c.key\n",
    )
    for config in (inline, in_file):
        (target,) = load_ovpn(config)
        assert target.cert is not None and target.cert.strip() == chain["cert"].strip()
        assert target.extra_certs is not None and chain["inter"].strip() in target.extra_certs


def test_pkcs12_and_encrypted_keys_with_askpass(tmp_path: Path, chain: dict[str, str]) -> None:
    key = serialization.load_pem_private_key(chain["key"].encode(), None)
    cert = x509.load_pem_x509_certificate(chain["cert"].encode())
    cas = [x509.load_pem_x509_certificate(chain[n].encode()) for n in ("inter", "root")]
    encryption = serialization.BestAvailableEncryption(b"pass-phrase")
    (tmp_path / "c.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(b"c", key, cert, cas, encryption)  # type: ignore[arg-type]
    )
    write(tmp_path / "pass.txt", "pass-phrase\n")
    (target,) = load_ovpn(
        write(tmp_path / "p.ovpn", "remote h.invalid\npkcs12 c.p12\naskpass pass.txt\n")
    )
    assert target.ca is not None and "BEGIN CERTIFICATE" in target.ca  # the bundle's CAs
    assert target.key is not None and "ENCRYPTED" not in target.key.get_secret_value()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()
    text = f"remote h.invalid\n<ca>\n{chain['root']}</ca>\n<cert>\n{chain['cert']}</cert>\n<key>\n{encrypted}</key>\n"
    (target,) = load_ovpn(write(tmp_path / "k.ovpn", text + "askpass pass.txt\n"))
    assert target.key is not None and "pass-phrase" not in repr(target)
    with pytest.raises(ConfigError, match="askpass") as caught:
        load_ovpn(write(tmp_path / "nopass.ovpn", text))
    assert caught.value.where is not None and caught.value.where.endswith(": <key>")
    write(tmp_path / "bad.txt", "not-it\n")
    with pytest.raises(ConfigError, match="does not decrypt"):
        load_ovpn(write(tmp_path / "bad.ovpn", text + "askpass bad.txt\n"))


def test_peer_fingerprint_needs_no_ca(tmp_path: Path) -> None:
    fp = ":".join(["ab"] * 32)
    (target,) = load_ovpn(write(tmp_path / "f.ovpn", f"remote h.invalid\npeer-fingerprint {fp}\n"))
    assert target.ca is None and target.peer_fingerprint == (fp.upper(),)
    block = f"remote h.invalid\n<peer-fingerprint>\n{fp}\n# a comment\n{'CD:' * 31}CD\n</peer-fingerprint>\n"
    (target,) = load_ovpn(write(tmp_path / "b.ovpn", block))
    assert len(target.peer_fingerprint) == 2
    with pytest.raises(ConfigError, match="ca or peer_fingerprint"):
        load_ovpn(write(tmp_path / "none.ovpn", "remote h.invalid\n"))
    with pytest.raises(ConfigError, match="not a SHA-256"):
        load_ovpn(write(tmp_path / "short.ovpn", "remote h.invalid\npeer-fingerprint AB:CD\n"))


def test_connection_blocks_and_colliding_remotes(tmp_path: Path, pki: Pki) -> None:
    config = write(
        tmp_path / "p.ovpn",
        "proto udp\nremote vpn.example.invalid 1194 udp\nremote vpn.example.invalid 1194 tcp\n"
        "remote vpn.example.invalid 1194 udp4\nremote vpn.example.invalid 1194 udp6\n"
        "remote-random\n<connection>\nremote other.example.invalid\nport 443\nproto tcp-client\n"
        "</connection>\n"
        f"<ca>\n{pki.ca}</ca>\n",
    )
    targets = load_ovpn(config)
    assert [(t.name, t.proto, t.port, t.ip_version) for t in targets] == [
        ("p/vpn.example.invalid:1194/udp", "udp", 1194, None),
        ("p/vpn.example.invalid:1194/tcp", "tcp", 1194, None),
        ("p/vpn.example.invalid:1194/udp4", "udp", 1194, 4),
        ("p/vpn.example.invalid:1194/udp6", "udp", 1194, 6),
        ("p/other.example.invalid:443", "tcp", 443, None),
    ]
    with pytest.raises(ConfigError, match="<connection> has no remote"):
        load_ovpn(
            write(tmp_path / "e.ovpn", "remote h.invalid\n<connection>\nport 1\n</connection>\n")
        )


def test_inline_credentials_and_provider_options(tmp_path: Path, pki: Pki) -> None:
    config = write(
        tmp_path / "prov.ovpn",
        "client\nremote 198.18.0.1 1194\nremote-random\ncipher AES-256-CBC\n"
        "data-ciphers-fallback AES-256-CBC\nauth SHA512\nreneg-sec 0\ncomp-lzo no\ntun-mtu 1500\n"
        "mssfix 1450\nfast-io\npull-filter ignore redirect-gateway\nsetenv CLIENT_CERT 0\n"
        "tls-version-min 1.2 or-highest\ntls-cipher ECDHE-ECDSA-AES128-GCM-SHA256\n"
        "tls-ciphersuites TLS_AES_128_GCM_SHA256\ntls-groups X25519:P-256\ntls-cert-profile preferred\n"
        f"<auth-user-pass>\nprobe\n{PASSWORD}\n</auth-user-pass>\n<ca>\n{pki.ca}</ca>\n",
    )
    (target,) = load_ovpn(config)
    assert target.username == "probe" and target.password is not None
    assert PASSWORD not in repr(target) and PASSWORD not in target.model_dump_json()
    assert target.data_ciphers_fallback == "AES-256-CBC" and target.auth == "SHA512"
    assert target.allow_compression == "no"  # comp-lzo no is stub framing only
    assert target.pull_filter == (("ignore", "redirect-gateway"),)
    assert (target.tls_version_min, target.tls_version_min_or_highest) == ("1.2", True)
    assert target.tls_groups == "X25519:P-256" and target.tls_cert_profile == "preferred"


@pytest.mark.parametrize(
    ("lines", "allowed"),
    [
        ("", "no"),
        ("comp-lzo no\n", "no"),
        ("comp-lzo yes\n", "asym"),
        ("compress lz4-v2\n", "asym"),
        ("compress\n", "asym"),  # stub framing, yet it lifts 2.6's stub-only default
        ("allow-compression asym\n", "asym"),
        ("comp-lzo yes\nallow-compression no\n", "no"),
    ],
)
def test_compression_policy_follows_openvpn(
    tmp_path: Path, pki: Pki, lines: str, allowed: str
) -> None:
    (target,) = load_ovpn(
        write(tmp_path / "c.ovpn", f"remote h.invalid\n{lines}<ca>\n{pki.ca}</ca>\n")
    )
    assert target.allow_compression == allowed
