"""AnyConnect profiles and inline AnyConnect targets → targets, and one clear line per mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers import ImportOptions, import_file, load_file
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.targets.anyconnect import AnyConnectTarget

Write = Callable[[str, str], Path]
PASSWORD = "s3cret-anyconnect-pass"
CA = CertificateAuthority.create("test CA")
CLIENT = CA.issue("probe", server=False)
OTHER = CA.issue("other", server=False)
PIN = "pin-sha256:EKa/7m+guyd6h9/LfwdJCEH/pIJZadPkfs/TpM5dV9M="


def profile(*entries: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<AnyConnectProfile xmlns="http://schemas.xmlsoap.org/encoding/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "<ClientInitialization><BackupServerList><HostAddress>backup.example.net"
        "</HostAddress></BackupServerList></ClientInitialization>\n"
        f"<ServerList>{''.join(entries)}</ServerList>\n</AnyConnectProfile>\n"
    )


def entry(name: str, address: str, group: str = "", protocol: str = "") -> str:
    return (
        f"<HostEntry><HostName>{name}</HostName><HostAddress>{address}</HostAddress>"
        + (f"<UserGroup>{group}</UserGroup>" if group else "")
        + (f"<PrimaryProtocol>{protocol}</PrimaryProtocol>" if protocol else "")
        + "</HostEntry>"
    )


def test_every_ssl_gateway_of_a_profile_is_a_target(write: Write) -> None:
    path = write(
        "corp.xml",
        profile(
            entry("Frankfurt", "vpn-fra.example.net", "engineering"),
            entry("Karachi", "vpn-khi.example.net:8443"),
            entry("IKEv2 Frankfurt", "ike-fra.example.net", protocol="IPsec"),
        ),
    )
    credentials = write("probe.txt", f"probe\n{PASSWORD}\n")
    targets = load_file(path, ImportOptions(auth_user_pass=credentials))
    assert [(t.name, t.host, t.port) for t in targets] == [
        ("corp/Frankfurt", "vpn-fra.example.net", 443),
        ("corp/Karachi", "vpn-khi.example.net", 8443),
    ]
    first = targets[0]
    assert isinstance(first, AnyConnectTarget)
    assert (first.url, first.username, first.transport) == (
        "https://vpn-fra.example.net/engineering",
        "probe",
        "tcp",
    )
    assert first.password is not None and first.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(targets)


def test_ipsec_gateways_are_listed_as_skipped(write: Write) -> None:
    path = write(
        "corp.xml",
        profile(entry("A", "a.example.net"), entry("I", "i.example.net", protocol="IPsec")),
    )
    imported = import_file(path)
    assert [target.host for target in imported.targets] == ["a.example.net"]
    [skipped] = imported.skipped
    assert skipped.describe().endswith(
        "corp.xml: HostEntry 2: IPsec gateway: the AnyConnect probe speaks the SSL (CSTP) protocol, not IPsec/IKEv2"
    )


def test_one_gateway_is_named_after_the_file(write: Write) -> None:
    [target] = load_file(write("lab.xml", profile(entry("Lab", "https://198.18.0.2:4443/"))))
    assert (target.name, target.endpoint) == ("lab", "198.18.0.2:4443")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (profile(entry("IKE", "ike.example.net", protocol="IPsec")), "no SSL HostEntry"),
        (profile(entry("A", "http://vpn.example.net/")), "HostEntry 1: HostAddress: url must be an https:// URL"),
        (profile(entry("A", "a.example.net"), entry("A", "b.example.net")), "HostEntry 2: names the same server as HostEntry 1"),
        (profile(entry("A", "vpn.example.net:99999")), "HostEntry 1: HostAddress: url has a port that is not a number"),
        ("<config-auth/>", "is <config-auth>, not an AnyConnect profile"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><AnyConnectProfile/>', "declares a DTD"),
        ("<AnyConnectProfile>", "is not XML"),
    ],
)  # fmt: skip
def test_a_bad_profile_is_one_line_naming_the_entry(write: Write, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_file(write("bad.xml", text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_inline_targets_read_secrets_from_files(write: Write) -> None:
    write("ca.pem", CA.cert)
    write("client.crt", CLIENT.cert)
    write("client.key", CLIENT.key)
    write("password.txt", PASSWORD + "\n")
    config = write(
        "vpnwatch.yml",
        "targets:\n"
        "  - {name: pw, protocol: anyconnect, url: 'vpn.example.net/sales', group: Sales,"
        "     username: probe, password_file: password.txt, ca_file: ca.pem}\n"
        "  - {name: cert, protocol: anyconnect, url: 'https://[2001:2::2]:4443',"
        "     cert_file: client.crt, key_file: client.key, servercert: '" + PIN + "'}\n",
    )
    pw, cert = (job.target for job in load_config(config).jobs)
    assert isinstance(pw, AnyConnectTarget) and isinstance(cert, AnyConnectTarget)
    assert (pw.url, pw.group, pw.ca) == ("https://vpn.example.net/sales", "Sales", CA.cert.strip())
    assert pw.password is not None and pw.password.get_secret_value() == PASSWORD
    assert (cert.url, cert.endpoint, cert.servercert) == (
        "https://[2001:2::2]:4443/",
        "[2001:2::2]:4443",
        PIN,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("url: 'ftp://vpn.example.net'", "url must be an https:// URL"),
        ("url: 'https://probe:pw@vpn.example.net'", "must not carry a username or password"),
        ("host: vpn.example.net, servercert: 'sha1:abcd'", "servercert: must be pin-sha256:"),
        ("host: vpn.example.net, password: x", "a password needs a username"),
        ("host: vpn.example.net, cert_file: c.crt, key_file: other.key", "key is not the private key of cert"),
        ("host: vpn.example.net, cert_file: c.crt", "cert and key go together"),
        ("host: vpn.example.net, path: 'no-slash'", "path: String should match pattern"),
    ],
)  # fmt: skip
def test_a_bad_inline_target_is_one_line(write: Write, fields: str, message: str) -> None:
    write("c.crt", CLIENT.cert)
    write("other.key", OTHER.key)
    config = write("vpnwatch.yml", f"targets:\n  - {{name: x, protocol: anyconnect, {fields}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text
    assert "PRIVATE KEY" not in text
