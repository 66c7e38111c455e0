"""Evidence of failed probes: pcaps of the probe's own flow, in a bounded ring, readable by tshark."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from vpnwatch.config import Config, Settings
from vpnwatch.evidence import INDEX, EvidenceRecorder, EvidenceSettings, flow_filter
from vpnwatch.jobs import Job
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.wireguard import KeyPair, WireGuardServer
from vpnwatch.monitor import Monitor
from vpnwatch.probes.registry import PROBES
from vpnwatch.probes.wireguard import WIREGUARD
from vpnwatch.result import Result
from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.wireguard import WireGuardTarget

probe_wireguard = WIREGUARD.probe()

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def server() -> Iterator[WireGuardServer]:
    with Namespace() as namespace, WireGuardServer(namespace) as server:
        yield server


def target(
    server: WireGuardServer, *, ipv6: bool = False, port: int | None = None
) -> WireGuardTarget:
    client = KeyPair.generate()
    server.add_peer(client.public)
    namespace = server.namespace
    return WireGuardTarget(
        name="wg lab/1",  # a name that is no file name: the file name is made safe
        host=namespace.ip6 if ipv6 else namespace.ip,
        port=port or server.port,
        private_key=client.private_b64,
        public_key=server.keys.public_b64,
    )


async def watched(recorder: EvidenceRecorder, target: TargetBase, timeout: float = 1.0) -> Result:
    async with recorder.watch(target) as watch:
        result = await probe_wireguard(target, timeout)  # type: ignore[arg-type]
        watch.keep_if_failed(result)
    return result


def tshark(path: Path) -> list[str]:
    """The packets tshark reads from ``path``, one summary line each."""
    done = subprocess.run(
        ["tshark", "-r", str(path), "-n", "-T", "fields", "-e", "ip.src", "-e", "ipv6.src",
         "-e", "_ws.col.Protocol", "-e", "_ws.col.Info"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def index(directory: Path) -> list[dict]:
    return json.loads((directory / INDEX).read_text())["entries"]


async def test_a_dropped_handshake_is_kept_with_its_packets(
    server: WireGuardServer, tmp_path: Path
) -> None:
    recorder = EvidenceRecorder(EvidenceSettings(directory=tmp_path))
    with Censor(server.namespace).applied("drop", "udp"):
        result = await watched(recorder, target(server))
    assert (result.ok, str(result.failure)) == (False, "timeout")
    [entry] = index(tmp_path)
    assert {k: entry[k] for k in ("target", "protocol", "failure", "stage")} == {
        "target": "wg lab/1", "protocol": "wireguard", "failure": "timeout", "stage": "handshake",
    }  # fmt: skip
    path = tmp_path / entry["file"]
    assert "/" not in entry["file"] and path.stat().st_size == entry["bytes"]
    lines = tshark(path)
    # The initiation left; nothing came back.
    assert len(lines) == 1 and "Handshake Initiation" in lines[0], lines
    [packet] = rdpcap(str(path))
    assert packet[UDP].dport == server.port and len(packet[UDP].payload) == 148


async def test_a_refused_probe_holds_the_icmp_error(
    server: WireGuardServer, tmp_path: Path
) -> None:
    recorder = EvidenceRecorder(EvidenceSettings(directory=tmp_path))
    result = await watched(recorder, target(server, port=9))  # nothing listens on port 9
    assert str(result.failure) == "refused"
    [entry] = index(tmp_path)
    lines = tshark(tmp_path / entry["file"])
    assert len(lines) == 2, lines
    assert "ICMP" in lines[1] and "unreachable" in lines[1].lower(), lines


async def test_ipv6_flows_and_their_icmp_errors_are_captured(
    server: WireGuardServer, tmp_path: Path
) -> None:
    recorder = EvidenceRecorder(EvidenceSettings(directory=tmp_path))
    result = await watched(recorder, target(server, ipv6=True, port=9))
    assert str(result.failure) == "refused"
    [entry] = index(tmp_path)
    lines = tshark(tmp_path / entry["file"])
    assert len(lines) == 2 and "ICMPv6" in lines[1], lines


async def test_a_successful_probe_leaves_nothing(server: WireGuardServer, tmp_path: Path) -> None:
    recorder = EvidenceRecorder(EvidenceSettings(directory=tmp_path))
    result = await watched(recorder, target(server))
    assert result.ok
    assert recorder.entries == [] and list(tmp_path.iterdir()) == []


async def test_only_the_probes_own_flow_is_captured(
    server: WireGuardServer, tmp_path: Path
) -> None:
    """A successful probe of another port runs meanwhile; none of its packets are kept."""
    recorder = EvidenceRecorder(EvidenceSettings(directory=tmp_path))
    bystander = target(server)
    failing = target(server, port=9)
    async with recorder.watch(failing) as watch:
        other, result = await asyncio.gather(
            probe_wireguard(bystander, 1), probe_wireguard(failing, 1)
        )
        watch.keep_if_failed(result)
    assert other.ok
    [entry] = index(tmp_path)
    assert not any("Handshake Response" in line for line in tshark(tmp_path / entry["file"]))
    assert entry["packets"] == 2


@pytest.mark.parametrize(("max_files", "max_bytes"), [(3, 10_000_000), (100, 4096)])
async def test_the_ring_never_exceeds_its_bounds(
    server: WireGuardServer, tmp_path: Path, max_files: int, max_bytes: int
) -> None:
    settings = EvidenceSettings(directory=tmp_path, max_files=max_files, max_bytes=max_bytes)
    recorder = EvidenceRecorder(settings)
    closed = target(server, port=9)
    kept: list[str] = []
    for _ in range(12):
        await watched(recorder, closed)
        files = sorted(p.name for p in tmp_path.glob("*.pcap"))
        entries = index(tmp_path)
        assert len(files) <= max_files
        assert sum(p.stat().st_size for p in tmp_path.glob("*.pcap")) <= max_bytes
        assert sorted(e["file"] for e in entries) == files  # the index and the files agree
        kept = [e["file"] for e in entries]
    assert len(kept) >= 2
    # A new recorder on the same directory takes the ring over, bounds and all.
    again = EvidenceRecorder(settings)
    assert [e.file for e in again.entries] == kept
    await watched(again, closed)
    after = [e["file"] for e in index(tmp_path)]
    assert after[-1] not in kept  # the new capture is in the ring
    # Whatever made room for it was the oldest: a capture that happens to be small (packets lost
    # on a loaded machine) may fit without evicting anything.
    assert after[:-1] == kept[len(kept) - len(after) + 1 :]


def test_the_filter_names_the_flow_and_icmp_errors_about_it() -> None:
    text = flow_filter(["198.18.1.2", "2001:2:0:1::2"], 51820, "udp")
    assert text.startswith("(udp and host 198.18.1.2 and port 51820) or (icmp and ")
    assert "icmp[24:4] == 0xc6120102" in text
    assert "ip6[84:4] == 0x00000002" in text


def test_an_unreadable_index_starts_a_new_ring(tmp_path: Path) -> None:
    (tmp_path / INDEX).write_text("{not json")
    assert EvidenceRecorder(EvidenceSettings(directory=tmp_path)).entries == []


async def test_the_monitor_keeps_evidence_when_configured(
    server: WireGuardServer, tmp_path: Path
) -> None:
    """settings.evidence in a config: the running monitor's failed probes leave pcaps behind."""
    settings = Settings(
        listen="127.0.0.1:0",
        interval=0.3,
        timeout=0.2,
        evidence=EvidenceSettings(directory=tmp_path / "evidence", max_files=3),
    )
    good, closed = target(server), target(server, port=9)
    jobs = tuple(
        Job(t.model_copy(update={"name": name}), 0.3, 0.2, "test")
        for name, t in (("good", good), ("closed", closed))
    )
    monitor = Monitor(lambda: Config(settings, jobs), PROBES)
    task = asyncio.create_task(monitor.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15  # a loaded machine probes late, not never
    while failed_probes(monitor) < 5 and loop.time() < deadline:
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    index = json.loads((tmp_path / "evidence" / INDEX).read_text())["entries"]
    assert {entry["target"] for entry in index} == {"closed"}
    assert {entry["failure"] for entry in index} == {"refused"}
    assert failed_probes(monitor) >= 5
    assert len(index) == 3  # the ring's bound, after several failed probes
    assert all(tshark(tmp_path / "evidence" / entry["file"]) for entry in index)


def failed_probes(monitor: Monitor) -> int:
    stats = monitor.metrics.targets.get("closed")
    return sum(stats.failures.values()) if stats is not None else 0
