"""Valid files of every kind vpnwatch reads, filled with known fake secrets.

The fuzzers damage these; the secrets test runs every command on them and searches everything
vpnwatch writes for the secrets, in every encoding.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from vpnwatch.lab.openvpn import Pki, generate_pki, write_ovpn
from vpnwatch.lab.wireguard import KeyPair
from vpnwatch.targets.obfs4 import encode_cert


def static_key_file(key: bytes) -> str:
    lines = [key[i : i + 16].hex() for i in range(0, len(key), 16)]
    body = "\n".join(lines)
    return f"-----BEGIN OpenVPN Static key V1-----\n{body}\n-----END OpenVPN Static key V1-----\n"


@dataclass(frozen=True)
class Secrets:
    """Recognisable fake secrets: searched for in output, logs, metrics and files."""

    wireguard_private: bytes = bytes(range(0x40, 0x60))
    wireguard_preshared: bytes = bytes(range(0x80, 0xA0))
    openvpn_static: bytes = bytes((i * 37 + 11) % 256 for i in range(256))
    password: str = "fake-password-Zq8rT3vLw9"

    @cached_property
    def pki(self) -> Pki:
        return generate_pki()

    def needles(self) -> dict[str, bytes]:
        """Every secret as raw bytes, base64 and hex (upper and lower case), by description."""
        raw = {
            "wireguard private key": self.wireguard_private,
            "wireguard preshared key": self.wireguard_preshared,
            "openvpn static key": self.openvpn_static[:16],  # one line of its key file
            "openvpn password": self.password.encode(),
            "openvpn client key": _pem_body(self.pki.client_key)[:48],
        }
        found: dict[str, bytes] = {}
        for name, value in raw.items():
            found[f"{name} (raw)"] = value
            found[f"{name} (base64)"] = base64.b64encode(value)
            found[f"{name} (hex)"] = value.hex().encode()
            found[f"{name} (HEX)"] = value.hex().upper().encode()
        return found


def _pem_body(pem: str) -> bytes:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----")).encode()


SECRETS = Secrets()


def wgquick_text(endpoint: str, *, server: bytes | None = None) -> str:
    server = server or KeyPair.generate().public
    return (
        "[Interface]\n"
        f"PrivateKey = {base64.b64encode(SECRETS.wireguard_private).decode()}\n"
        "Address = 198.19.0.2/32\n"
        "DNS = 198.19.0.1\n\n"
        "[Peer]  # the lab\n"
        f"PublicKey = {base64.b64encode(server).decode()}\n"
        f"PresharedKey = {base64.b64encode(SECRETS.wireguard_preshared).decode()}\n"
        "AllowedIPs = 0.0.0.0/0, ::/0\n"
        f"Endpoint = {endpoint}\n"
        "PersistentKeepalive = 25\n"
    )


def ovpn_text(directory: Path, host: str, port: int, *, proto: str = "udp") -> str:
    """A provider-style .ovpn with every kind of key material inline and a password file."""
    credentials = directory / "credentials.txt"
    credentials.write_text(f"probe\n{SECRETS.password}\n")
    path = write_ovpn(
        directory / "scratch.ovpn",
        host=host,
        port=port,
        proto=proto,
        ca=SECRETS.pki.ca,
        cert=SECRETS.pki.client_cert,
        key=SECRETS.pki.client_key,
        wrap="tls-auth",
        wrap_key=static_key_file(SECRETS.openvpn_static),
        auth_user_pass=credentials.relative_to(directory),
        extra=["auth SHA256", "verify-x509-name vpnwatch-lab-server name", "cipher AES-256-GCM"],
    )
    text = path.read_text()
    path.unlink()
    return text


def bridge_lines(host: str, port: int) -> str:
    cert = encode_cert(bytes(range(20)), KeyPair.generate().public)
    return (
        "# bridges from the lab\n"
        f"Bridge obfs4 {host}:{port} {'AB' * 20} cert={cert} iat-mode=0\n"
        f"obfs4 [2001:2::2]:{port} cert={cert} iat-mode=1\n"
    )


def config_yaml(directory: Path, host: str) -> str:
    """A vpnwatch config with an inline target of every protocol and a file of every kind."""
    (directory / "wg.key").write_text(base64.b64encode(SECRETS.wireguard_private).decode())
    (directory / "lab.conf").write_text(wgquick_text(f"{host}:51820"))
    (directory / "lab.ovpn").write_text(ovpn_text(directory, host, 1194))
    (directory / "lab.bridges").write_text(bridge_lines(host, 4443))
    config = {
        "settings": {"interval": 30, "timeout": 5, "listen": "127.0.0.1:0", "jitter": 0.1},
        "include": ["*.bridges"],
        "targets": [
            {"from": "lab.conf", "labels": {"provider": "lab"}},
            {"from": "lab.ovpn", "name": "ovpn", "interval": 60},
            {
                "name": "wg-inline",
                "protocol": "wireguard",
                "host": host,
                "port": 51821,
                "private_key_file": "wg.key",
                "public_key": base64.b64encode(KeyPair.generate().public).decode(),
            },
            {"name": "tcp", "protocol": "tcp", "host": host, "port": 443, "role": "control"},
            {"name": "dns", "protocol": "dns", "host": host, "port": 53, "query": "lab.test"},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
