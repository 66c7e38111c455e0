"""Crashes the hardening work found, each with the smallest input that showed it."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.hardening.files import SECRETS
from tests.hardening.fuzzing import no_hang
from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.files import MAX_FILE_SIZE
from vpnwatch.importers import load_file


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A FIFO nobody writes to: reading it blocks forever."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


# -- importers (fixed) ----------------------------------------------------------------------------


def test_ovpn_material_path_with_a_nul_is_a_config_error(tmp_path: Path) -> None:
    # Path.read_text raised ValueError("embedded null byte"): a traceback, not one line.
    path = tmp_path / "nul.ovpn"
    path.write_bytes(b"remote h\nca \x00\n")
    with pytest.raises(ConfigError, match=r"line 2: ca: cannot read .*NUL"):
        load_file(path)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/stdin"])
def test_ovpn_material_from_a_device_is_refused_not_read(tmp_path: Path, device: str) -> None:
    # /dev/zero was read until memory ran out; /dev/stdin blocked.
    path = tmp_path / "device.ovpn"
    path.write_text(f"remote h\nca {device}\n")
    with no_hang(), pytest.raises(ConfigError, match="not a regular file"):
        load_file(path)


def test_ovpn_material_from_a_fifo_does_not_block(tmp_path: Path, fifo: Path) -> None:
    path = tmp_path / "fifo.ovpn"
    path.write_text(f"remote h\ncert {fifo}\n")
    with no_hang(), pytest.raises(ConfigError, match="not a regular file"):
        load_file(path)


@pytest.mark.parametrize("suffix", [".conf", ".ovpn", ".bridges"])
def test_oversized_files_are_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(b"#" * (MAX_FILE_SIZE + 1))
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_file(path)


def test_crlf_files_still_import(tmp_path: Path) -> None:
    """Reading bytes instead of text mode must keep Windows line ends working."""
    path = tmp_path / "crlf.bridges"
    cert = "A" * 70
    path.write_bytes(f"obfs4 198.18.0.2:443 cert={cert} iat-mode=0\r\n".encode())
    (target,) = load_file(path)
    assert target.port == 443


# -- config and targets ---------------------------------------------------------------------------


def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yml"
    path.write_text("[" * 1000 + "]" * 1000)
    with pytest.raises(ConfigError):
        load_config(path)


def test_secret_file_path_with_a_nul_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nul.yml"
    path.write_text('targets: [{protocol: wireguard, name: x, private_key_file: "\\0"}]\n')
    with pytest.raises(ConfigError):
        load_config(path)


def test_secret_file_from_a_fifo_does_not_block(tmp_path: Path, fifo: Path) -> None:
    path = tmp_path / "fifo.yml"
    path.write_text(f"targets: [{{protocol: wireguard, name: x, private_key_file: {fifo}}}]\n")
    with no_hang(0.5), pytest.raises(ConfigError):
        load_config(path)


def test_auth_user_pass_from_a_fifo_does_not_block(tmp_path: Path, fifo: Path) -> None:
    path = tmp_path / "fifo.ovpn"
    path.write_text(f"remote h\nauth-user-pass {fifo}\n")
    with no_hang(0.5), pytest.raises(ConfigError):
        load_file(path)


def _version_2_certificate() -> str:
    """A CA certificate whose version field says X.509 v2, which cryptography refuses to load."""
    der = bytearray(
        x509.load_pem_x509_certificate(SECRETS.pki.ca.encode()).public_bytes(Encoding.DER)
    )
    version_at = der.index(b"\xa0\x03\x02\x01\x02") + 4
    der[version_at] = 1
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def test_a_version_2_certificate_is_a_config_error(tmp_path: Path) -> None:
    # Found by the long .ovpn fuzz run: one bit flipped in <ca>; InvalidVersion is no ValueError.
    path = tmp_path / "v2.ovpn"
    path.write_text(f"remote h\n<ca>\n{_version_2_certificate()}</ca>\n")
    with pytest.raises(ConfigError):
        load_file(path)


def test_an_endpoint_error_does_not_repeat_the_value(tmp_path: Path) -> None:
    # Found by the long .conf fuzz run: a private key pasted on the Endpoint line was echoed.
    private = base64.b64encode(SECRETS.wireguard_private).decode()
    path = tmp_path / "pasted.conf"
    path.write_text(f"[Interface]\nPrivateKey = {private}\n[Peer]\nEndpoint = {private}\n")
    with pytest.raises(ConfigError) as error:
        load_file(path)
    assert private not in str(error.value)


def test_a_private_key_of_an_unknown_kind_is_a_config_error(tmp_path: Path) -> None:
    # Found by the long .ovpn fuzz run: one bit flipped in the key's algorithm identifier made
    # cryptography raise UnsupportedAlgorithm, which is no ValueError.
    body = "".join(SECRETS.pki.client_key.splitlines()[1:-1])
    der = base64.b64decode(body)
    ec_public_key = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
    assert ec_public_key in der
    mangled = base64.encodebytes(
        der.replace(ec_public_key, b"\x1a" + ec_public_key[1:], 1)
    ).decode()
    key = f"-----BEGIN PRIVATE KEY-----\n{mangled}-----END PRIVATE KEY-----\n"
    path = tmp_path / "odd-key.ovpn"
    path.write_text(
        f"remote h\n<ca>\n{SECRETS.pki.ca}</ca>\n<cert>\n{SECRETS.pki.client_cert}</cert>\n<key>\n{key}</key>\n"
    )
    with pytest.raises(ConfigError, match="a private key of a kind vpnwatch cannot use"):
        load_file(path)
