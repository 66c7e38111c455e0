"""ss:// and trojan:// links, link lists (plain or base64) and SIP008 documents."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers import import_file
from vpnwatch.importers.links import parse_link
from vpnwatch.targets.shadowsocks import ShadowsocksTarget
from vpnwatch.targets.trojan import TrojanTarget

SECRET = "s3cret-Pa55"


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


SS_BASE64 = f"ss://{b64url('aes-256-gcm:' + SECRET)}@192.0.2.1:8388/?plugin=obfs-local%3Bobfs%3Dtls%3Bobfs-host%3Dwww.example#Frankfurt%201"
SS_CLEAR = f"ss://chacha20-ietf-poly1305:{SECRET}@[2001:db8::1]:443#v6"
SS_LEGACY = "ss://" + base64.b64encode(f"aes-128-gcm:{SECRET}@192.0.2.2:8389".encode()).decode()
TROJAN = f"trojan://{SECRET}@proxy.example:443?security=tls&sni=cdn.example&type=tcp#Trojan%20A"


def test_sip002_with_base64_userinfo_and_a_plugin() -> None:
    protocol, fields, tag = parse_link(SS_BASE64)
    assert (protocol, tag) == ("shadowsocks", "Frankfurt 1")
    assert fields == {
        "host": "192.0.2.1", "port": 8388, "method": "aes-256-gcm", "password": SECRET,
        "plugin": "obfs-local", "plugin_opts": "obfs=tls;obfs-host=www.example",
    }  # fmt: skip


def test_sip002_in_clear_and_the_legacy_form() -> None:
    assert parse_link(SS_CLEAR)[1]["host"] == "2001:db8::1"
    assert parse_link(SS_LEGACY)[1] == {
        "host": "192.0.2.2", "port": 8389, "method": "aes-128-gcm", "password": SECRET,
        "plugin": "", "plugin_opts": "",
    }  # fmt: skip


def test_trojan_link() -> None:
    assert parse_link(TROJAN) == (
        "trojan",
        {"host": "proxy.example", "port": 443, "password": SECRET, "server_name": "cdn.example"},
        "Trojan A",
    )


@pytest.mark.parametrize("encode", [False, True])
def test_a_subscription_imports_what_it_speaks_and_skips_the_rest(
    write: Callable[[str, str], Path], encode: bool
) -> None:
    links = "\n".join(
        [SS_BASE64, "vmess://eyJ2IjoiMiJ9", SS_CLEAR, "vless://uuid@192.0.2.9:443?type=ws#x",
         "hysteria2://pw@192.0.2.10:443#h", TROJAN, ""]
    )  # fmt: skip
    text = base64.b64encode(links.encode()).decode() if encode else links
    imported = import_file(write("provider.sub", text))
    assert [(t.protocol, t.name) for t in imported.targets] == [
        ("shadowsocks", "Frankfurt 1"), ("shadowsocks", "v6"), ("trojan", "Trojan A"),
    ]  # fmt: skip
    assert [(s.where, s.entry) for s in imported.skipped] == [
        ("line 2", "vmess:// link"), ("line 4", "vless:// link"), ("line 5", "hysteria2:// link"),
    ]  # fmt: skip
    assert all(SECRET not in s.describe() and "uuid" not in s.describe() for s in imported.skipped)


def test_names_fall_back_to_the_endpoint_when_tags_are_missing_or_repeated(
    write: Callable[[str, str], Path],
) -> None:
    twice = f"ss://{b64url('aes-128-gcm:x')}@192.0.2.1:1#same"
    again = f"ss://{b64url('aes-128-gcm:y')}@192.0.2.2:2#same"
    imported = import_file(write("list.links", f"{twice}\n{again}\n{SS_LEGACY}\n"))
    assert [t.name for t in imported.targets] == [
        "list/192.0.2.1:1", "list/192.0.2.2:2", "list/192.0.2.2:8389",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ss://bm90LWJhc2U2NA@192.0.2.1:1", "the userinfo is not method:password"),
        (f"ss://{b64url('aes-128-gcm:x')}@192.0.2.1:99999", "port that is not a number"),
        ("just some text", "a line that is not a link"),
        # found by fuzzing: urllib raises ValueError for these
        (f"ss://{b64url('aes-128-gcm:x')}@[]:1", "not a well-formed link"),
        (f"ss://{b64url('aes-128-gcm:x')}@[2001:db8::1:1", "not a well-formed link"),
    ],
)
def test_a_malformed_link_is_one_line_naming_it_without_its_secret(
    write: Callable[[str, str], Path], line: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        import_file(write("bad.links", line + "\n"))
    assert message in str(error.value) and "bad.links: line 1" in str(error.value)
    assert SECRET not in str(error.value)


def test_sip008(write: Callable[[str, str], Path]) -> None:
    document = {
        "version": 1,
        "servers": [
            {"id": "1", "remarks": "Tokyo", "server": "192.0.2.5", "server_port": 8388,
             "password": SECRET, "method": "chacha20-ietf-poly1305",
             "plugin": "v2ray-plugin", "plugin_opts": "tls;host=cdn.example;path=/ws"},
            {"server": "192.0.2.6", "server_port": 8389, "password": SECRET, "method": "aes-128-gcm"},
        ],
    }  # fmt: skip
    [tokyo, other] = import_file(write("servers.json", json.dumps(document))).targets
    assert isinstance(tokyo, ShadowsocksTarget) and tokyo.name == "Tokyo"
    assert tokyo.plugin_mode is not None and tokyo.plugin_mode.kind == "websocket-tls"
    assert tokyo.plugin_mode.mux and tokyo.plugin_mode.path == "/ws"
    assert other.name == "servers/192.0.2.6:8389"


def test_sip008_errors_name_the_server(write: Callable[[str, str], Path]) -> None:
    document = {"servers": [{"server": "192.0.2.5", "server_port": 1, "method": "aes-128-gcm"}]}
    with pytest.raises(ConfigError, match=r"servers\[0\]: password: Field required"):
        import_file(write("servers.json", json.dumps(document)))


def test_inline_targets_and_overrides_in_a_config(write: Callable[[str, str], Path]) -> None:
    write("pw.txt", SECRET + "\n")
    write("list.links", TROJAN + "\n")
    config = write(
        "vpnwatch.yml",
        "targets:\n"
        "  - {name: ss-1, protocol: shadowsocks, host: 192.0.2.1, port: 8388,"
        " method: aes-128-gcm, password_file: pw.txt, destination: 'echo://198.18.0.80:7'}\n"
        "  - {from: list.links, destination: 'http://198.18.0.80/generate_204', labels: {provider: x}}\n",
    )
    [ss, trojan] = [job.target for job in load_config(config).jobs]
    assert isinstance(ss, ShadowsocksTarget) and ss.password.get_secret_value() == SECRET
    assert isinstance(trojan, TrojanTarget) and trojan.labels == {"provider": "x"}
    assert trojan.destination == "http://198.18.0.80/generate_204"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("destination: 'ftp://x'", "destination must be http://"),
        ("plugin: obfs-local, plugin_opts: 'obfs=quic'", "simple-obfs needs obfs=http or obfs=tls"),
        ("plugin: v2ray-plugin, plugin_opts: 'mode=quic'", "mode=quic is not spoken"),
    ],
)
def test_bad_fields_are_refused(
    write: Callable[[str, str], Path], field: str, message: str
) -> None:
    config = write(
        "vpnwatch.yml",
        "targets:\n  - {name: s, protocol: shadowsocks, host: 192.0.2.1, port: 1,"
        f" method: aes-128-gcm, password: x, {field}}}\n",
    )
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_a_from_entry_reads_field_files_for_every_target(write: Callable[[str, str], Path]) -> None:
    """A self-signed Trojan fleet's CA, given once for a whole list."""
    write("fleet-ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    write("fleet.links", f"{TROJAN}\n{TROJAN.replace('proxy.example', 'proxy2.example')}#b\n")
    config = write("vpnwatch.yml", "targets:\n  - {from: fleet.links, ca_file: fleet-ca.pem}\n")
    targets = [job.target for job in load_config(config).jobs]
    assert len(targets) == 2
    assert all(
        isinstance(t, TrojanTarget) and (t.ca or "").startswith("-----BEGIN") for t in targets
    )


def test_links_asking_for_what_is_not_spoken_are_skipped(write: Callable[[str, str], Path]) -> None:
    lines = [
        f"ss://{b64url('rc4-md5:' + SECRET)}@192.0.2.1:1#old",
        f"ss://{b64url('aes-128-gcm:x')}@192.0.2.1:2/?plugin=kcptun%3Bmode%3Dfast#kcp",
        f"ss://{b64url('chacha20-ietf-poly1305:x')}@192.0.2.1:3/?plugin=v2ray-plugin%3Bmode%3Dquic#q",
        f"trojan://{SECRET}@h.example:443?type=ws&path=/x#ws",
        f"ss://{b64url(SECRET + ':x')}@192.0.2.1:4#what",
        SS_CLEAR,
    ]
    imported = import_file(write("mixed.links", "\n".join(lines) + "\n"))
    assert [t.name for t in imported.targets] == ["v6"]
    assert [(s.where, s.entry) for s in imported.skipped] == [
        ("line 1", "ss:// link (rc4-md5)"),
        ("line 2", "ss:// link (plugin kcptun)"),
        ("line 3", "ss:// link (plugin v2ray-plugin)"),
        ("line 4", "trojan:// link (type=ws)"),
        ("line 5", "ss:// link (an unknown cipher)"),
    ]
    assert "mode=quic is not spoken" in imported.skipped[2].reason
    assert all(SECRET not in s.describe() for s in imported.skipped)
