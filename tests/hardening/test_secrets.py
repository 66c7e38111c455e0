"""Known fake secrets through every command and error path: none may come out, in any encoding.

The files hold a WireGuard private and preshared key, an OpenVPN client key, tls-auth key and
password (all of them fake, and recognisable). Every command runs on them, with debug logging
on, in text and JSON: ``config check``, ``check``, ``run`` (its logs, ``/metrics``,
``/api/targets``, ``/probe``, the packet captures of failed probes), ``report`` (with the password
as a Prometheus credential in the URL and as a token file) and ``demo --once``; then
every kind of bad file. Everything they
print, log, serve or write is searched for each secret raw, in base64 and in hex.
"""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.hardening.files import SECRETS
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import OpenVPNLab, ServerVariant, write_ovpn
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.protocols.openvpn.wrappers import parse_static_key
from vpnwatch.protocols.wireguard import public_key_of

pytestmark = pytest.mark.lab

CLI = [sys.executable, "-m", "vpnwatch.cli"]
_B64 = base64.b64encode


@dataclass
class SecretLab:
    directory: Path
    #: Secrets beyond SECRETS that only this lab knows (the tls-auth key openvpn generated).
    extra: dict[str, bytes] = field(default_factory=dict)
    #: Everything vpnwatch produced, by where it came from.
    outputs: dict[str, bytes] = field(default_factory=dict)

    def needles(self) -> dict[str, bytes]:
        found = SECRETS.needles()
        for name, value in self.extra.items():
            found |= {
                f"{name} (raw)": value,
                f"{name} (base64)": _B64(value),
                f"{name} (hex)": value.hex().encode(),
            }
        return found

    def vpnwatch(self, name: str, *argv: str, status: int | None = None) -> str:
        """Run the CLI with debug logging, keep what it printed, return its stderr."""
        proc = subprocess.run(
            [*CLI, "-v", *argv], capture_output=True, cwd=self.directory, timeout=120, check=False
        )
        self.outputs[f"{name}: stdout"] = proc.stdout
        self.outputs[f"{name}: stderr"] = proc.stderr
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        if status is not None:
            assert proc.returncode == status, (name, proc.stderr.decode())
        return proc.stderr.decode()


def _write_files(
    lab: SecretLab, ns: Namespace, wireguard: WireGuardServer, ovpn: OpenVPNLab
) -> None:
    directory = lab.directory
    client = KeyPair(SECRETS.wireguard_private, public_key_of(SECRETS.wireguard_private))
    wireguard.add_peer(client.public, SECRETS.wireguard_preshared)
    good = wireguard.client_config(client)
    (directory / "wg.conf").write_text(good)
    no_psk = "\n".join(line for line in good.splitlines() if "PresharedKey" not in line)
    (directory / "wg-no-psk.conf").write_text(no_psk + "\n")
    (directory / "wg.key").write_text(_B64(SECRETS.wireguard_private).decode() + "\n")
    server = ovpn.servers["secret"]
    assert server.client_wrap_key is not None
    lab.extra["lab tls-auth key"] = parse_static_key(server.client_wrap_key)[:16]
    (directory / "good.pass").write_text(f"probe\n{SECRETS.password}\n")
    (directory / "wrong.pass").write_text(f"probe\nwrong-{SECRETS.password}\n")
    for name, password_file in (("ovpn", "good.pass"), ("ovpn-wrong", "wrong.pass")):
        write_ovpn(
            directory / f"{name}.ovpn",
            host=server.host,
            port=server.port,
            proto="udp",
            ca=ovpn.pki.ca,
            cert=ovpn.pki.client_cert,
            key=ovpn.pki.client_key,
            wrap="tls-auth",
            wrap_key=server.client_wrap_key,
            auth_user_pass=Path(password_file),
        )
    config = {
        "settings": {
            "interval": 1,
            "timeout": 0.9,
            "listen": "127.0.0.1:0",
            # Failed probes leave packet captures: they are searched like everything else.
            "evidence": {"directory": str(directory / "evidence")},
        },
        "targets": [
            {"from": "wg.conf"},
            {"from": "wg-no-psk.conf"},
            {"from": "ovpn.ovpn"},
            {"from": "ovpn-wrong.ovpn"},
            {
                "name": "wg-inline",
                "protocol": "wireguard",
                "host": ns.ip,
                "port": wireguard.port,
                "private_key_file": "wg.key",
                "preshared_key": _B64(SECRETS.wireguard_preshared).decode(),
                "public_key": _B64(wireguard.public_key).decode(),
            },
        ],
    }
    (directory / "vpnwatch.yml").write_text(yaml.safe_dump(config))


def _bad_files(directory: Path) -> list[Path]:
    """One broken file of every kind, each broken where a secret is."""
    private = _B64(SECRETS.wireguard_private).decode()
    wg = (directory / "wg.conf").read_text()
    ovpn = (directory / "ovpn.ovpn").read_text()
    pem_lines = SECRETS.pki.client_key.strip().splitlines()
    files = {
        "bad-key.conf": wg.replace(private, private + "AAAA"),
        "bad-psk.conf": wg.replace(_B64(SECRETS.wireguard_preshared).decode(), "%" + private),
        "bad-pem.ovpn": ovpn.replace(pem_lines[1], pem_lines[1][::-1]),
        "bad-pass.ovpn": ovpn.replace("good.pass", "one-line.pass"),
        "bad-section.conf": wg.replace("[Peer]", f"[{private}]"),
        "bad.bridges": f"obfs4 198.18.0.2:443 cert={private} iat-mode=0\n",
        "bad-field.yml": yaml.safe_dump(
            {"targets": [{"name": "x", "protocol": "wireguard", "password": SECRETS.password}]}
        ),
        "bad-value.yml": yaml.safe_dump(
            {
                "targets": [
                    {
                        "name": "x",
                        "protocol": "wireguard",
                        "host": "h",
                        "port": 1,
                        "private_key": private + "!",
                        "public_key": private,
                    }
                ]
            }
        ),
        "bad-pair.yml": yaml.safe_dump(
            {"targets": [{"name": "x", "protocol": "openvpn", "password": SECRETS.password}]}
        ),
        "bad-yaml.yml": f"targets: [{{private_key: {private}\n",
        # A swanctl.conf whose PSK and EAP password are fine but whose gateway has no CA beside it.
        "bad-ca.conf": (
            "connections {\n c {\n  remote_addrs = 198.18.0.2\n  local {\n   auth = eap-mschapv2\n"
            "   eap_id = probe\n  }\n }\n}\nsecrets {\n eap-probe {\n  id = probe\n"
            f'  secret = "{SECRETS.password}"\n }}\n}}\n'
        ),
        "bad-ikev2.yml": yaml.safe_dump(
            {
                "targets": [
                    {
                        "name": "x",
                        "protocol": "ikev2",
                        "host": "h",
                        "psk": SECRETS.password,
                        "password": SECRETS.password,
                    }
                ]
            }
        ),
    }
    (directory / "one-line.pass").write_text(SECRETS.password + "\n")
    for name, text in files.items():
        (directory / name).write_text(text)
    return [directory / name for name in files]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretLab]:
    directory = tmp_path_factory.mktemp("secrets")
    server_files = directory / "server"
    server_files.mkdir()
    variant = ServerVariant("secret", wrap="tls-auth", credentials=("probe", SECRETS.password))
    with Namespace() as ns, WireGuardServer(ns) as wireguard:
        ovpn = OpenVPNLab(ns, server_files, pki=SECRETS.pki)
        ovpn.start([variant])
        lab = SecretLab(directory)
        _write_files(lab, ns, wireguard, ovpn)
        yield lab


def _scrape(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body: bytes = response.read()
        return body


def test_commands_on_good_files(lab: SecretLab) -> None:
    lab.vpnwatch("config check", "config", "check", "vpnwatch.yml", status=0)
    for fmt in ("text", "json"):
        lab.vpnwatch(f"check ({fmt})", "--log-format", fmt, "check", "--config", "vpnwatch.yml")
        lab.vpnwatch(f"check --json ({fmt})", "--log-format", fmt, "check", "--json", "wg.conf")
    results = lab.outputs["check (text): stdout"].decode()
    assert re.search(r"^wg\s.*\sok\s", results, re.MULTILINE), results  # the real paths ran
    assert re.search(r"^ovpn\s.*\sok\s", results, re.MULTILINE), results
    assert re.search(r"^ovpn-wrong\s.*FAILED\s+auth", results, re.MULTILINE), results
    assert re.search(r"^wg-no-psk\s.*FAILED", results, re.MULTILINE), results
    lab.vpnwatch("report", "report", "--prometheus", "http://127.0.0.1:9", status=1)
    password = SECRETS.password
    (lab.directory / "token").write_text(password + "\n")
    refused = "http://127.0.0.1:9"
    lab.vpnwatch(
        "report (URL credentials)", "report", "--prometheus",
        refused.replace("//", f"//ann:{password}@"), status=1,
    )  # fmt: skip
    lab.vpnwatch(
        "report (token)", "report", "--prometheus", refused, "--prometheus-token-file", "token",
        "--prometheus-header", "X-Scope-OrgID: tenant", status=1,
    )  # fmt: skip
    lab.vpnwatch(
        "report (two users)", "report", "--prometheus", refused.replace("//", f"//ann:{password}@"),
        "--prometheus-user", "bob", "--prometheus-password-file", "token", status=2,
    )  # fmt: skip


def test_run_logs_metrics_and_api(lab: SecretLab) -> None:
    log = lab.directory / "run.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                *CLI,
                "-v",
                "--log-format",
                "json",
                "run",
                "--config",
                "vpnwatch.yml",
                "--web.enable-probe",
            ],
            cwd=lab.directory,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        port = _wait_for_port(log)
        time.sleep(3)  # a few probes of every target: failures and recoveries get logged
        lab.outputs["run: /metrics"] = _scrape(port, "/metrics")
        lab.outputs["run: /api/targets"] = _scrape(port, "/api/targets")
        lab.outputs["run: /probe"] = _scrape(port, "/probe?target=ovpn-wrong")
        process.send_signal(signal.SIGHUP)  # a reload re-reads every file
        time.sleep(1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    lab.outputs["run: log"] = log.read_bytes()
    evidence = sorted((lab.directory / "evidence").iterdir())
    assert any(path.suffix == ".pcap" for path in evidence), evidence
    for path in evidence:
        lab.outputs[f"run: evidence {path.name}"] = path.read_bytes()
    assert b"vpnwatch_probe_success" in lab.outputs["run: /metrics"]
    assert b'target="ovpn-wrong"' in lab.outputs["run: /probe"]
    assert b"configuration reloaded" in lab.outputs["run: log"]


def _wait_for_port(log: Path) -> int:
    for _ in range(200):
        match = re.search(rb"metrics at http://127\.0\.0\.1:(\d+)/metrics", log.read_bytes())
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    raise AssertionError(f"vpnwatch run did not start: {log.read_text()}")


def test_every_bad_file_is_one_line(lab: SecretLab) -> None:
    for path in _bad_files(lab.directory):
        if path.suffix == ".yml":
            stderr = lab.vpnwatch(path.name, "config", "check", path.name, status=2)
        else:
            stderr = lab.vpnwatch(path.name, "check", path.name, status=2)
        errors = [line for line in stderr.splitlines() if " DEBUG " not in line]
        assert len(errors) == 1 and errors[0].startswith("vpnwatch: "), stderr


def test_demo_prints_no_key_material(lab: SecretLab) -> None:
    """The demo makes keys of its own; none of them, nor any PEM, may show."""
    lab.vpnwatch("demo --once", "demo", "--once", "--json")
    output = lab.outputs["demo --once: stdout"] + lab.outputs["demo --once: stderr"]
    assert b"-----BEGIN" not in output
    assert not re.search(rb"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=", output)  # any 32-byte key


def test_no_secret_anywhere(lab: SecretLab) -> None:
    """Runs last in this module: searches everything the tests above collected."""
    assert len(lab.outputs) >= 20
    planted = b"".join(
        (lab.directory / name).read_bytes() for name in ("wg.conf", "ovpn.ovpn", "good.pass")
    )
    needles = lab.needles()
    for name in (
        "wireguard private key (base64)",
        "openvpn password (raw)",
        "lab tls-auth key (hex)",
    ):
        assert needles[name] in planted, f"the search would miss the {name}"
    leaks = [
        f"{name} in {where}"
        for where, output in lab.outputs.items()
        for name, needle in lab.needles().items()
        if needle in output
    ]
    assert leaks == []
