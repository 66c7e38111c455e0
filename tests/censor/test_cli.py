"""``vpnwatch lab censor`` on a running lab, as a user staging a crackdown on the demo would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vpnwatch.lab.censor import Censor, _delay_line_pids
from vpnwatch.lab.cli import lab_services
from vpnwatch.lab.netns import Namespace
from vpnwatch.probes.registry import PROBES

from .conftest import Lab

pytestmark = pytest.mark.lab


def lab_censor(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command in its own process, naming the lab: other labs may run meanwhile."""
    return subprocess.run(
        [sys.executable, "-m", "vpnwatch.lab.cli", "censor", *args, "--lab", lab.namespace.name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def probe(lab: Lab, name: str, timeout: float = 1.0) -> tuple[bool, str | None]:
    target = lab.targets[name]
    result = await PROBES[target.protocol](target, timeout)
    return result.ok, None if result.failure is None else str(result.failure)


def test_the_lab_services_are_found_by_what_listens(lab: Lab) -> None:
    services = lab_services(lab.namespace)
    assert {
        name: sorted((f.transport, f.port) for f in flows) for name, flows in services.items()
    } == {
        "wireguard": [("udp", 51820)],
        "openvpn": sorted(
            (t.transport, t.port) for n, t in lab.targets.items() if n.startswith("openvpn")
        ),
        "obfs4": [("tcp", 4443)],
        "tls": [("tcp", 8443)],
        "dns": [("tcp", 53), ("udp", 53)],  # dnsmasq answers over both
    }


async def test_a_service_is_censored_and_cleared(lab: Lab, censor: Censor) -> None:
    applied = lab_censor(lab, "drop", "wireguard")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == f"censor in {lab.namespace.name}: drop on udp/51820"
    assert await probe(lab, "wireguard") == (False, "timeout")
    assert await probe(lab, "dns") == (True, None)
    cleared = lab_censor(lab, "clear")
    assert cleared.returncode == 0, cleared.stderr
    assert await probe(lab, "wireguard") == (True, None)


async def test_dpi_names_the_handshake(lab: Lab, censor: Censor) -> None:
    applied = lab_censor(lab, "dpi", "openvpn")
    assert applied.returncode == 0, applied.stderr
    assert await probe(lab, "openvpn-tcp", 1.5) == (False, "timeout")
    assert await probe(lab, "wireguard") == (True, None)


async def test_the_delay_line_outlives_the_command_until_cleared(lab: Lab, censor: Censor) -> None:
    applied = lab_censor(lab, "delay", "dns", "--ms", "300")
    assert applied.returncode == 0, applied.stderr
    assert len(_delay_line_pids(lab.namespace)) == 1
    target = lab.targets["dns"]
    result = await PROBES[target.protocol](target, 3)
    assert result.ok and result.duration >= 0.6, result
    assert lab_censor(lab, "clear").returncode == 0
    assert _delay_line_pids(lab.namespace) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reset", "udp"], "reset answers with TCP resets: it needs TCP traffic"),
        (["drop", "--percent", "5"], "--percent does not apply to drop"),
        (
            ["dpi", "obfs4"],
            "dpi recognises wireguard, openvpn, ikev2, encrypted, tls traffic, not obfs4",
        ),
        (["loss", "--percent", "150"], "loss percent must be at most 100"),
        (["drop", "openvpn", "--port", "9"], "no openvpn server listens in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(lab: Lab, args: list[str], message: str) -> None:
    result = lab_censor(lab, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    nft = lab.namespace.exec(["nft", "list", "tables"])
    assert "vpnwatch_lab_censor" not in nft  # nothing half-applied


def test_an_unknown_or_ambiguous_lab_is_refused(lab: Lab) -> None:
    run = [sys.executable, "-m", "vpnwatch.lab.cli", "censor", "drop"]
    unknown = subprocess.run(
        [*run, "--lab", "vpnwatch-lab999"], capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(
        "vpnwatch lab censor: --lab: no lab 'vpnwatch-lab999' is running"
    )
    with Namespace() as other:  # at least two labs now: a lab is a namespace running something
        other.spawn(["sleep", "60"])
        ambiguous = subprocess.run(run, capture_output=True, text=True, check=False)
    assert ambiguous.returncode == 2
    assert "labs are running" in ambiguous.stderr and "choose one" in ambiguous.stderr
