"""strongSwan swanctl.conf connections and .sswan profiles → IKEv2 targets, and one clear line for
every mistake."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from vpnwatch.errors import ConfigError
from vpnwatch.importers import ImportOptions, import_file, load_file
from vpnwatch.importers.swanctl import parse_settings
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.targets.ikev2 import IKEv2Target

Write = Callable[[str, str], Path]
CA = CertificateAuthority.create("importer test CA")
CLIENT = CA.issue("alice.example.invalid", server=False, sans=("alice.example.invalid",))

EAP_CONF = """
# the office road warrior
connections {
  office {
    remote_addrs = 192.0.2.7, vpn.example.invalid
    proposals = aes256gcm16-prfsha256-ecp384-x25519, aes256-sha256-modp2048
    local {
      auth = eap-mschapv2
      eap_id = alice
    }
    remote {
      auth = pubkey
      id = "vpn.example.invalid"
    }
    children {
      net {
        remote_ts = 10.0.0.0/8
      }
    }
  }
}
secrets {
  eap-alice {
    id = alice
    secret = 0sc2VjcmV0IHdvcmQ=
  }
}
"""


def swanctl_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "x509ca").mkdir(exist_ok=True)
    (tmp_path / "x509ca" / "ca.pem").write_text(CA.cert)
    path = tmp_path / "swanctl.conf"
    path.write_text(text)
    return path


def test_an_eap_connection_with_its_secret_and_the_ca_beside_it(tmp_path: Path) -> None:
    [target] = load_file(swanctl_dir(tmp_path, EAP_CONF))
    assert isinstance(target, IKEv2Target)
    assert (target.name, target.host, target.port) == ("swanctl", "192.0.2.7", 500)
    assert (target.username, target.remote_id, target.effective_remote_auth) == (
        "alice",
        "vpn.example.invalid",
        "pubkey",
    )
    assert target.password is not None and target.password.get_secret_value() == "secret word"
    assert target.groups == (20, 31, 14)
    assert target.ca == CA.cert


def test_a_psk_connection_and_a_certificate_connection_name_targets_after_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "x509").mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "x509" / "me.pem").write_text(CLIENT.cert)
    (tmp_path / "private" / "other.pem").write_text(CA.issue("x", server=False).key)
    (tmp_path / "private" / "me.pem").write_text(CLIENT.key)
    text = """
connections {
  home {
    remote_addrs = 198.51.100.1
    remote_port = 4500
    local {
      auth = psk
      id = me@home.invalid
    }
    remote {
      auth = psk
      id = gw.home.invalid
    }
  }
  work {
    remote_addrs = 198.51.100.2
    local {
      auth = pubkey
      certs = me.pem
      id = alice.example.invalid
    }
    remote {
      auth = pubkey
    }
  }
}
secrets {
  ike-home {
    id-1 = me@home.invalid
    id-2 = gw.home.invalid
    secret = "a shared # secret"
  }
}
"""
    home, work = load_file(swanctl_dir(tmp_path, text))
    assert isinstance(home, IKEv2Target) and isinstance(work, IKEv2Target)
    assert (home.name, home.port, home.effective_remote_auth) == ("swanctl/home", 4500, "psk")
    assert home.psk is not None and home.psk.get_secret_value() == "a shared # secret"
    assert (work.name, work.cert, work.local_id) == (
        "swanctl/work",
        CLIENT.cert,
        "alice.example.invalid",
    )
    assert work.key is not None and work.key.get_secret_value() == CLIENT.key
    assert work.remote_id is None


def test_a_wg_quick_conf_is_still_wireguard(write: Write) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    path = write(
        "wg0.conf",
        f"[Interface]\nPrivateKey = {key}\n[Peer]\nPublicKey = {key}\nEndpoint = 192.0.2.1:51820\n",
    )
    [target] = load_file(path)
    assert target.protocol == "wireguard"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("connections {\n", "a section is not closed"),
        (
            "connections {\n a {\n  remote_addrs = 192.0.2.1\n  local {\n   auth = psk\n   id = x@y.invalid\n  }\n }\n}\n",
            "no ike secret",
        ),
        (
            "connections {\n a {\n  remote_addrs = 192.0.2.1\n  proposals = aes128-sha1-modp1024\n }\n}\n",
            "proposals name no key exchange group vpnwatch offers",
        ),
        ("connections {\n a = b\n}\n", "is a value, not a connection section"),
        ("connections {\n include other.conf\n}\n", "include is not supported"),
    ],
)
def test_mistakes_are_one_line_naming_the_connection(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file(swanctl_dir(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_secret_is_never_in_an_error(tmp_path: Path) -> None:
    path = tmp_path / "swanctl.conf"  # no x509ca/ beside it: the CA is missing
    path.write_text(EAP_CONF.replace("0sc2VjcmV0IHdvcmQ=", '"hunter2-secret"'))
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert "remote auth = pubkey needs remote.cacerts" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_settings_syntax_keeps_quoted_values_and_merges_sections() -> None:
    parsed = parse_settings('a {\n b = "x = { y }" # c\n}\na {\n c = d e\n}\n')
    assert parsed == {"a": {"b": "x = { y }", "c": "d e"}}


def sswan(write: Write, **changes: object) -> Path:
    der = base64.b64encode(CA.certificate.public_bytes(Encoding.DER)).decode()
    profile: dict[str, object] = {
        "uuid": "9b5a7c3e-0000-4000-8000-000000000000",
        "name": "Office",
        "type": "ikev2-eap",
        "remote": {"addr": "vpn.example.invalid", "cert": der},
        "local": {"eap_id": "alice"},
        "ike-proposal": "aes256-sha256-ecp256",
    }
    profile.update(changes)
    return write("office.sswan", json.dumps(profile))


def test_an_sswan_eap_profile_takes_its_password_from_auth_user_pass(write: Write) -> None:
    credentials = write("login.txt", "alice\nsecret word\n")
    [target] = load_file(sswan(write), ImportOptions(auth_user_pass=credentials))
    assert isinstance(target, IKEv2Target)
    assert (target.name, target.host, target.remote_id, target.username, target.groups) == (
        "office",
        "vpn.example.invalid",
        "vpn.example.invalid",
        "alice",
        (19,),
    )
    assert target.password is not None and target.password.get_secret_value() == "secret word"
    assert "BEGIN CERTIFICATE" in (target.ca or "")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "an EAP profile holds no password"),
        ({"type": "ikev2-eap-tls"}, "type 'ikev2-eap-tls' is not one vpnwatch probes"),
        ({"remote": {"addr": "vpn.example.invalid"}}, "remote.cert (the gateway's CA) is missing"),
        (
            {"type": "ikev2-cert", "local": {"p12": "bm90IGEgcDEy"}},
            "local.p12 is not an unencrypted PKCS#12",
        ),
    ],
)
def test_sswan_mistakes(write: Write, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file(sswan(write, **changes))
    assert message in str(caught.value)


def test_a_file_that_is_not_json(write: Write) -> None:
    with pytest.raises(ConfigError, match="is not JSON"):
        load_file(write("x.sswan", "{"))


def test_connections_a_probe_cannot_make_are_skipped_not_fatal(tmp_path: Path) -> None:
    text = EAP_CONF.replace(
        "connections {",
        """connections {
  servers {
    remote_addrs = %any
  }
  legacy {
    remote_addrs = 192.0.2.9
    local {
      auth = xauth
    }
  }""",
        1,
    )
    imported = import_file(swanctl_dir(tmp_path, text))
    assert [t.name for t in imported.targets] == ["swanctl/office"]
    assert [(s.where, s.reason) for s in imported.skipped] == [
        ("connections.servers", "remote_addrs names no gateway to dial (a responder's connection)"),
        ("connections.legacy", "local auth = xauth: vpnwatch speaks psk, pubkey and eap-mschapv2"),
    ]
