"""Every file format vpnwatch reads, damaged: targets or one ConfigError line, nothing else.

A ConfigError is what the CLI prints as one line and exit status 2; any other exception would be
a traceback. Its text must also stay one line and never carry a secret from the file.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given

from tests.hardening.files import (
    SECRETS,
    bridge_lines,
    config_yaml,
    ovpn_text,
    wgquick_text,
)
from tests.hardening.fuzzing import FUZZ_SLOW, count, mutated, no_hang
from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.importers import load_file

HOST = "198.18.0.2"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


def _loads_or_fails_cleanly(load: Callable[[], object], parser: str) -> None:
    count(parser)
    with no_hang():
        try:
            load()
        except ConfigError as exc:
            message = str(exc)
        else:
            return
    assert "\n" not in message
    for name, needle in SECRETS.needles().items():
        if len(needle) >= 16:
            assert needle.decode(errors="replace") not in message, name


def _seeds(text: str) -> list[bytes]:
    raw = text.encode()
    return [raw, raw.replace(b"\n", b"\r\n"), raw[: len(raw) // 2]]


@pytest.fixture(scope="module")
def ovpn_seed(directory: Path) -> str:
    return ovpn_text(directory, HOST, 1194)


@pytest.fixture(scope="module")
def yaml_seed(directory: Path) -> str:
    return config_yaml(directory, HOST)


@FUZZ_SLOW
@given(data=mutated(_seeds(wgquick_text(f"{HOST}:51820")), max_size=100_000))
def test_wgquick_conf(directory: Path, data: bytes) -> None:
    path = directory / "fuzz.conf"
    path.write_bytes(data)
    _loads_or_fails_cleanly(lambda: load_file(path), "importer.wgquick")


@FUZZ_SLOW
@given(data=mutated(_seeds(bridge_lines(HOST, 4443)), max_size=100_000))
def test_bridge_lines(directory: Path, data: bytes) -> None:
    path = directory / "fuzz.bridges"
    path.write_bytes(data)
    _loads_or_fails_cleanly(lambda: load_file(path), "importer.bridgeline")


def test_ovpn(directory: Path, ovpn_seed: str) -> None:
    @FUZZ_SLOW
    @given(data=mutated(_seeds(ovpn_seed), max_size=200_000))
    def fuzz(data: bytes) -> None:
        path = directory / "fuzz.ovpn"
        path.write_bytes(data)
        _loads_or_fails_cleanly(lambda: load_file(path), "importer.ovpn")

    fuzz()


def test_yaml_config(directory: Path, yaml_seed: str) -> None:
    @FUZZ_SLOW
    @given(data=mutated(_seeds(yaml_seed), max_size=100_000))
    def fuzz(data: bytes) -> None:
        path = directory / "fuzz.yml"
        path.write_bytes(data)
        _loads_or_fails_cleanly(lambda: load_config(path), "config.yaml")

    fuzz()


_LINKS = (
    "ss://YWVzLTI1Ni1nY206c2VjcmV0@198.18.0.2:8388/?plugin=obfs-local%3Bobfs%3Dtls#a\n"
    "ss://chacha20-ietf-poly1305:pw@[2001:2::2]:443#b\n"
    "ss://YWVzLTEyOC1nY206dGVzdEAxOTguMTguMC4yOjg4ODk#legacy\n"
    "trojan://pw@198.18.0.2:443?sni=x.invalid&type=tcp#c\n"
    "vmess://eyJ2IjoiMiJ9\n"
)
_SIP008 = (
    '{"version": 1, "servers": [{"server": "198.18.0.2", "server_port": 8388, "password": "pw",'
    ' "method": "aes-256-gcm", "plugin": "v2ray-plugin", "plugin_opts": "tls;host=a.invalid"}]}'
)


@FUZZ_SLOW
@given(data=mutated([*_seeds(_LINKS), base64.b64encode(_LINKS.encode())], max_size=100_000))
def test_proxy_links(directory: Path, data: bytes) -> None:
    path = directory / "fuzz.sub"
    path.write_bytes(data)
    _loads_or_fails_cleanly(lambda: load_file(path), "importer.links")


@FUZZ_SLOW
@given(data=mutated(_seeds(_SIP008), max_size=100_000))
def test_sip008(directory: Path, data: bytes) -> None:
    path = directory / "fuzz.json"
    path.write_bytes(data)
    _loads_or_fails_cleanly(lambda: load_file(path), "importer.sip008")
