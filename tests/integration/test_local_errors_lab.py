"""Whose fault it is, against the real wireguard-go: this host's limits are never an endpoint's.

``vpnwatch check`` runs as a user would run it, in a process whose open-files limit the test sets.
With room for a few sockets it lowers its concurrency to fit and every probe is a real, verified
handshake; with almost none, what it cannot do is an error of its own, never a failure of the peer.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnwatch.config import load_config
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.limits import open_fds
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import LocalError, LocalReason

pytestmark = pytest.mark.lab

PEERS = 100


@pytest.fixture(scope="module")
def peer_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    directory = tmp_path_factory.mktemp("peers")
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        files = []
        for index in range(PEERS):
            client = KeyPair.generate()
            server.add_peer(client.public)
            path = directory / f"peer{index:03}.conf"
            path.write_text(server.client_config(client))
            files.append(path)
        yield files


def check_under_limit(files: list[Path], limit: int) -> tuple[int, list[dict[str, object]], str]:
    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vpnwatch.cli",
            "check",
            "--json",
            "--no-tunnel",  # the limits are the point: a hundred handshakes, not tunnel tests
            "--timeout",
            "10",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        preexec_fn=lower_limit,
        timeout=300,
        check=False,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, records, proc.stderr


def test_a_low_open_files_limit_lowers_concurrency_and_every_handshake_verifies(peer_files):
    status, records, stderr = check_under_limit(peer_files, 64)
    assert len(records) == PEERS, stderr
    assert all(record["ok"] for record in records), [r for r in records if not r["ok"]][:3]
    assert {record["stage"] for record in records} == {"handshake"}
    assert status == 0
    assert "lowered to" in stderr  # said once, with the limit


def test_the_smallest_limit_still_gives_real_results(peer_files):
    status, records, stderr = check_under_limit(peer_files, 20)
    assert len(records) == PEERS, stderr  # no target silently dropped
    failed = [record for record in records if record["failure"] is not None]
    assert failed == []
    errors = [record for record in records if not record["ok"]]
    assert all(record["error"] == "file_descriptors" for record in errors), errors[:3]
    assert status == (3 if errors else 0)


async def test_out_of_descriptors_is_a_local_error_not_a_failure(peer_files):
    target = load_config(None, [peer_files[0]]).jobs[0].target
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_fds() + 16, hard))
    filler = []
    try:
        with pytest.raises(OSError):  # take every descriptor left
            while True:
                filler.append(os.open(os.devnull, os.O_RDONLY))
        with pytest.raises(LocalError) as raised:
            await PROBES["wireguard"](target, 5.0)
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert raised.value.reason is LocalReason.FILE_DESCRIPTORS
    assert base64.b64encode(target.private_key.get_secret_value()).decode() not in str(raised.value)
