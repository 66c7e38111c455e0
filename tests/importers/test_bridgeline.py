"""Bridge lines as users copy them → obfs4 targets, and one clear line for every mistake."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers import import_file
from vpnwatch.importers.bridgeline import load_bridge_lines
from vpnwatch.targets.obfs4 import Obfs4Target, decode_cert, encode_cert

NODE_ID = bytes.fromhex("7e7b1c2f8b4c2e1a9d3f0a6b5c4d3e2f1a0b9c8d")
PUBLIC_KEY = bytes(range(32))
CERT = encode_cert(NODE_ID, PUBLIC_KEY)
FINGERPRINT = "4352E58420E68F5E40BF7C74FADDCCD9D1349413"

Write = Callable[[str, str], Path]


def test_cert_is_unpadded_base64_of_node_id_and_key() -> None:
    assert len(CERT) == 70 and not CERT.endswith("=")
    assert decode_cert(CERT) == (NODE_ID, PUBLIC_KEY)
    assert decode_cert(CERT + "==") == (NODE_ID, PUBLIC_KEY)


def test_torrc_bridge_line(write: Write) -> None:
    path = write("home.txt", f"Bridge obfs4 192.0.2.3:443 {FINGERPRINT} cert={CERT} iat-mode=1\n")
    [target] = load_bridge_lines(path).targets
    assert target == Obfs4Target(
        name="home",
        host="192.0.2.3",
        port=443,
        node_id=NODE_ID,
        public_key=PUBLIC_KEY,
        iat_mode=1,
        fingerprint=FINGERPRINT,
    )
    assert target.transport == "tcp"
    assert target.cert == CERT


def test_several_lines_with_comments_ipv6_and_no_fingerprint(write: Write) -> None:
    path = write(
        "bridges.txt",
        "# from bridges.torproject.org\n\n"
        f"obfs4 192.0.2.3:443 {FINGERPRINT.lower()} cert={CERT} iat-mode=0\n"
        "   \n"
        f"  Bridge obfs4 [2001:db8::7]:8443 cert={CERT} iat-mode=2  \n",
    )
    first, second = load_bridge_lines(path).targets
    assert first.name == "bridges/192.0.2.3:443"
    assert first.fingerprint == FINGERPRINT
    assert (second.name, second.host, second.port) == (
        "bridges/[2001:db8::7]:8443",
        "2001:db8::7",
        8443,
    )
    assert (second.fingerprint, second.iat_mode) == (None, 2)


def test_old_node_id_and_public_key_arguments(write: Write) -> None:
    line = f"obfs4 192.0.2.3:443 node-id={NODE_ID.hex()} public-key={PUBLIC_KEY.hex()} iat-mode=0"
    [target] = load_bridge_lines(write("old.txt", line)).targets
    assert (target.node_id, target.public_key) == (NODE_ID, PUBLIC_KEY)


def test_yaml_style_cert_field() -> None:
    target = Obfs4Target.model_validate(
        {"name": "b", "host": "192.0.2.3", "port": 443, "cert": CERT, "data": "echo"}
    )
    assert (target.node_id, target.public_key, target.data) == (NODE_ID, PUBLIC_KEY, "echo")
    assert Obfs4Target.model_validate_json(target.model_dump_json()) == target


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"obfs4 192.0.2.3:443 cert={CERT[:-4]} iat-mode=0", "cert decodes to 49 bytes, not 52"),
        ("obfs4 192.0.2.3:443 cert=%%%notbase64%%% iat-mode=0", "cert is not valid base64"),
        ("obfs4 192.0.2.3:443 iat-mode=0", "missing cert="),
        (f"obfs4 192.0.2.3:443 cert={CERT}", "missing iat-mode="),
        (f"obfs4 192.0.2.3:443 cert={CERT} iat-mode=7", "iat-mode= must be 0, 1 or 2"),
        (f"obfs4 bridge.example.net:443 cert={CERT} iat-mode=0", "is not an IP address"),
        ("snowflake 192.0.2.3:99999 url=https://x.example", "has a port that is not"),
        (f"obfs4 2001:db8::7:443 cert={CERT} iat-mode=0", "write IPv6 addresses as [address]:port"),
        ("192.0.2.3:443 FINGERPRINT cert=x", "a bridge without a transport takes no key=value"),
        ("snowflake", "the snowflake bridge line has no address"),
        (f"obfs4 192.0.2.3:443 ABCD cert={CERT} iat-mode=0", "fingerprint: a fingerprint is 40"),
        (f"obfs4 192.0.2.3:443 cert={CERT} cert={CERT} iat-mode=0", "cert= appears twice"),
        (f"obfs4 192.0.2.3:443 {FINGERPRINT} cert={CERT} junk", "expected key=value"),
        ("Bridge", "Bridge needs a bridge line after it"),
    ],
)
def test_malformed_lines_name_the_line(write: Write, line: str, message: str) -> None:
    path = write("bad.txt", f"# comment\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_bridge_lines(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: line 2: ")
    assert message in text
    assert CERT not in text and "\n" not in text


def test_duplicate_endpoint(write: Write) -> None:
    line = f"obfs4 192.0.2.3:443 cert={CERT} iat-mode=0\n"
    with pytest.raises(ConfigError, match=r"line 2: 192\.0\.2\.3:443 is already listed on line 1"):
        load_bridge_lines(write("dup.txt", line * 2))


def test_empty_and_missing_files(write: Write, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no bridge lines found"):
        load_bridge_lines(write("empty.txt", "# nothing here\n\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_bridge_lines(tmp_path / "absent.txt")
    (tmp_path / "binary.txt").write_bytes(os.urandom(16) + b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read"):
        load_bridge_lines(tmp_path / "binary.txt")


SNOWFLAKE = (
    "snowflake 192.0.2.4:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72"
    " fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72"
    " url=https://snowflake-broker.example/ fronts=cdn.example ice=stun:stun.example:3478"
)
WEBTUNNEL = (
    "webtunnel [2001:db8:7c31:a5b4:9a1d:40d:e7a1:b3c2]:443 1D4D6FB2EA0E1CB9F1A8B2E3C4D5E6F708192A3B"
    " url=https://bridge.example/secret-path ver=0.0.1"
)
MEEK = (
    "meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625"
    " url=https://meek.example/ front=ajax.example"
)


def test_a_mixed_list_gives_obfs4_targets_and_names_what_it_skips(write: Write) -> None:
    path = write(
        "mixed.bridges",
        f"{SNOWFLAKE}\nobfs4 192.0.2.3:443 cert={CERT} iat-mode=0\nBridge {WEBTUNNEL}\n"
        f"{MEEK}\n192.0.2.9:9001 {FINGERPRINT}\n[2001:db8::9]\n",
    )
    imported = load_bridge_lines(path)
    [target] = imported.targets
    assert (target.name, target.host, target.port) == ("mixed", "192.0.2.3", 443)
    assert [(s.where, s.entry) for s in imported.skipped] == [
        ("line 1", "snowflake bridge"),
        ("line 3", "webtunnel bridge"),
        ("line 4", "meek_lite bridge"),
        ("line 5", "plain bridge"),
        ("line 6", "plain bridge"),
    ]
    assert "does not speak the snowflake transport" in imported.skipped[0].describe()
    # Where the bridges are and how to reach them is the user's business, not a log's.
    assert not any("secret-path" in s.describe() for s in imported.skipped)


def test_a_torrc_snippet_reads_bridge_options_and_ignores_the_others(write: Write) -> None:
    path = write(
        "torrc",
        "# Tor Browser's bridges, pasted\nUseBridges 1\nSocksPort 127.0.0.1:9150\n"
        "ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"
        "ClientTransportPlugin snowflake exec /usr/bin/snowflake-client\n"
        f"bridge obfs4 192.0.2.3 {FINGERPRINT} cert={CERT} iat-mode=2\n"
        f"Bridge {SNOWFLAKE}\n",
    )
    imported = import_file(path)
    [target] = imported.targets
    assert (target.name, target.port, target.iat_mode) == ("torrc", 443, 2)
    assert [(s.where, s.entry) for s in imported.skipped] == [("line 7", "snowflake bridge")]


@pytest.mark.parametrize("name", ["torrc", "torrc-bridges", "home.torrc", "bridges.txt"])
def test_a_torrc_is_known_by_its_name_or_its_options(write: Write, name: str) -> None:
    """In a torrc (by name, or by a torrc-only option) a bare bridge line is an unknown option,
    which Tor refuses, so the file is refused too; in a bridge list it is a bridge."""
    header = "UseBridges 1\n" if name.endswith(".txt") else ""
    path = write(name, f"{header}obfs4 192.0.2.3:443 cert={CERT} iat-mode=0\n")
    with pytest.raises(ConfigError, match=r"line \d: in a torrc a bridge line starts with"):
        import_file(path)
    assert load_bridge_lines(write("plain.txt", path.read_text().removeprefix(header))).targets


def test_a_file_of_only_skipped_bridges_says_so(write: Write) -> None:
    path = write("snow.txt", f"{SNOWFLAKE}\n{MEEK}\n")
    assert not load_bridge_lines(path).targets
    with pytest.raises(ConfigError, match=r"no targets: every entry was skipped: .*snow\.txt: "
                       r"line 1: snowflake bridge: .* and 1 more"):  # fmt: skip
        load_config(None, [path])


def test_the_tor_link_check_needs_the_fingerprint_it_checks(write: Write) -> None:
    """``data: tor`` proves the relay's identity against the line's fingerprint; a line without
    one is refused with a line naming the target and field, never probed half-checked."""
    with_fingerprint = write("a.txt", f"obfs4 192.0.2.3:443 {FINGERPRINT} cert={CERT} iat-mode=0")
    without = write("b.txt", f"obfs4 192.0.2.3:443 cert={CERT} iat-mode=0")
    config = write("vpnwatch.yml", "targets: [{from: a.txt, data: tor}]\n")
    [job] = load_config(config).jobs
    assert isinstance(job.target, Obfs4Target) and job.target.data == "tor"
    assert job.target.fingerprint == FINGERPRINT and with_fingerprint.exists()
    config = write("vpnwatch.yml", "targets: [{from: b.txt, data: tor}]\n")
    with pytest.raises(
        ConfigError, match=r"vpnwatch.yml: targets\[0\]: data: tor .* needs a fingerprint"
    ):
        load_config(config)
    assert without.exists()
