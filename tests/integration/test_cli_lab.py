"""``vpnwatch check`` and ``config check`` as a user runs them, against the lab's wireguard-go."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def server() -> Iterator[WireGuardServer]:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: WireGuardServer) -> KeyPair:
    client = KeyPair.generate()
    server.add_peer(client.public)
    return client


def vpnwatch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpnwatch.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_secret(client: KeyPair, *texts: str) -> None:
    for text in texts:
        assert client.private_b64 not in text
        assert client.private.hex() not in text
        assert base64.b64encode(client.private).decode()[:20] not in text


def test_check_prints_a_table_and_exits_by_result(server, client, tmp_path):
    good = tmp_path / "fra-1.conf"
    good.write_text(server.client_config(client))
    closed = tmp_path / "closed.conf"
    closed.write_text(server.client_config(client).replace(f":{server.port}", ":9"))
    ok = vpnwatch("check", good)
    assert ok.returncode == 0, ok.stderr
    header, row = ok.stdout.splitlines()[:2]
    assert header.split() == [
        "TARGET",
        "PROTOCOL",
        "ENDPOINT",
        "RESULT",
        "FAILURE",
        "STAGE",
        "TIME",
    ]
    # The file names the client's Address and the server's tunnel address: check tests the tunnel.
    assert row.split()[:6] == ["fra-1", "wireguard", server.endpoint(), "ok", "-", "data"]
    assert "10/10 echoes through the tunnel" in ok.stdout
    bare = vpnwatch("check", "--no-tunnel", good)
    assert bare.stdout.splitlines()[1].split()[3:6] == ["ok", "-", "handshake"]
    failed = vpnwatch("check", "--no-tunnel", "--timeout", "2", good, closed)
    assert failed.returncode == 1
    assert any(
        line.split()[:5] == ["closed", "wireguard", f"{server.namespace.ip}:9", "FAILED", "refused"]
        for line in failed.stdout.splitlines()
    )
    assert_no_secret(client, ok.stdout, ok.stderr, failed.stdout, failed.stderr)


def test_check_json_has_one_object_per_target(server, client, tmp_path):
    good = tmp_path / "fra-1.conf"
    good.write_text(server.client_config(client))
    unknown = tmp_path / "unknown.conf"
    unknown.write_text(server.client_config(KeyPair.generate()))
    done = vpnwatch("check", "--json", "--no-tunnel", "--timeout", "1", good, unknown)
    assert done.returncode == 1
    records = {r["target"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(records) == {"fra-1", "unknown"}
    good_record = records["fra-1"]
    assert {
        "target",
        "protocol",
        "endpoint",
        "transport",
        "ok",
        "failure",
        "stage",
        "stages",
        "duration_seconds",
        "detail",
        "certificate_not_after",
    } <= set(good_record)
    assert (
        good_record["ok"],
        good_record["failure"],
        good_record["stage"],
        good_record["transport"],
    ) == (True, None, "handshake", "udp")
    assert good_record["duration_seconds"] > 0
    assert (records["unknown"]["ok"], records["unknown"]["failure"]) == (False, "timeout")
    assert_no_secret(client, done.stdout, done.stderr)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (
            lambda text: text.replace("PrivateKey", "# PrivateKey"),
            "bad.conf: line 1: [Interface]: missing PrivateKey",
        ),
        (
            lambda text: text.replace("PublicKey = ", "PublicKey = %%"),
            "[Peer] PublicKey: is not valid base64",
        ),
        (
            lambda text: text.replace("Endpoint = ", "Endpoint = [::1"),
            "[Peer] Endpoint: has an unclosed '['",
        ),
    ],
    ids=["missing key", "bad base64", "bad endpoint"],
)
def test_a_malformed_conf_exits_2_with_one_line(server, client, tmp_path, mangle, message):
    bad = tmp_path / "bad.conf"
    bad.write_text(mangle(server.client_config(client)))
    for args in (("check", bad), ("check", "--json", bad), ("run", bad)):
        done = vpnwatch(*args)
        assert done.returncode == 2
        assert done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith("vpnwatch: ") and message in line
        assert_no_secret(client, done.stderr)


def test_config_check_lists_targets_without_secrets(server, client, tmp_path):
    (tmp_path / "fra-1.conf").write_text(server.client_config(client))
    (tmp_path / "probe.key").write_text(client.private_b64)
    config = tmp_path / "vpnwatch.yml"
    config.write_text(
        "targets:\n"
        "  - {from: fra-1.conf, labels: {provider: acme}}\n"
        f"  - {{name: inline, protocol: wireguard, host: {server.namespace.ip}, port: {server.port},"
        f" private_key_file: probe.key, public_key: {server.keys.public_b64}}}\n"
    )
    done = vpnwatch("config", "check", config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:4] == [
        "fra-1",
        "wireguard",
        "udp",
        server.endpoint(),
    ]
    assert "provider=acme" in done.stdout
    assert done.stdout.splitlines()[-1].endswith("2 targets, ok")
    assert_no_secret(client, done.stdout, done.stderr)


def test_json_logs_are_one_object_per_line(tmp_path, server, client):
    good = tmp_path / "fra-1.conf"
    good.write_text(server.client_config(client))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpnwatch.cli",
            "--log-format",
            "json",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1",
            "--timeout",
            "1",
            good,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stderr.readline() for _ in range(2)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    entries = [json.loads(line) for line in lines]
    assert entries[0]["message"].startswith("probing 1 targets")
    assert entries[1] == entries[1] | {"target": "fra-1", "protocol": "wireguard", "level": "info"}
