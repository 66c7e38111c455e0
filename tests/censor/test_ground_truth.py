"""Ground truth: under each censor mode, every protocol reports the failure the mode implies.

Each case stages one mode against the whole lab and probes every target at once, so a case costs
one probe timeout. Expectations name the failure and the stage it happens at; ``OK`` means the mode
must leave that protocol alone.
"""

from __future__ import annotations

import asyncio

import pytest

from vpnwatch.lab.censor import Censor
from vpnwatch.probes import run_probe
from vpnwatch.probes.registry import PROBES
from vpnwatch.result import Result

from .conftest import Lab

pytestmark = pytest.mark.lab

TIMEOUT = 1.5
OK = ("ok", "")
PROTOCOLS = (
    "wireguard",
    "openvpn-udp",
    "openvpn-udp-v3",
    "openvpn-tcp",
    "obfs4",
    "tcp",
    "tls",
    "dns",
)


TCP = ("openvpn-tcp", "obfs4", "tcp", "tls")
UDP = ("wireguard", "openvpn-udp", "openvpn-udp-v3", "dns")


def first_stage(name: str) -> str:
    """Where a probe of ``name`` fails when its very first packet gets no useful answer."""
    if name == "wireguard":
        return "handshake"
    if name.startswith("openvpn-udp"):
        return "reset"
    if name == "dns":
        return "answer"
    return "connect"


def everywhere(failure: str) -> dict[str, tuple[str, str]]:
    return {name: (failure, first_stage(name)) for name in PROTOCOLS}


CASES: dict[str, tuple[dict[str, object], dict[str, tuple[str, str]]]] = {
    "drop": ({"mode": "drop"}, everywhere("timeout")),
    "reject-port": ({"mode": "reject"}, everywhere("refused")),
    "reject-host": ({"mode": "reject", "icmp": "host-unreachable"}, everywhere("unreachable")),
    "reject-net": ({"mode": "reject", "icmp": "no-route"}, everywhere("unreachable")),
    "reject-admin": ({"mode": "reject", "icmp": "admin-prohibited"}, everywhere("unreachable")),
    # A reset answering the SYN refuses TCP; UDP has no SYN to answer and passes.
    "reset": (
        {"mode": "reset"},
        {name: ("refused", "connect") if name in TCP else OK for name in PROTOCOLS},
    ),
    # A reset once data flows: each TCP protocol at the stage its first write starts. The TCP
    # control writes nothing, so it cannot see this censor: why it is not the only control.
    "reset-data": (
        {"mode": "reset-data"},
        {
            "openvpn-tcp": ("reset", "reset"),
            "obfs4": ("reset", "handshake"),
            "tls": ("reset", "tls"),
        },
    ),
    # Recognising the handshakes' first packets blocks WireGuard and OpenVPN, on any port,
    # silently; obfs4 and the controls pass.
    "dpi": (
        {"mode": "dpi"},
        {
            "wireguard": ("timeout", "handshake"),
            "openvpn-udp": ("timeout", "reset"),
            "openvpn-udp-v3": ("timeout", "reset"),
            "openvpn-tcp": ("timeout", "reset"),
        },
    ),
    "dpi-wireguard": (
        {"mode": "dpi", "protocol": "wireguard"},
        {"wireguard": ("timeout", "handshake")},
    ),
    "dpi-openvpn": (
        {"mode": "dpi", "protocol": "openvpn"},
        {
            "openvpn-udp": ("timeout", "reset"),
            "openvpn-udp-v3": ("timeout", "reset"),
            "openvpn-tcp": ("timeout", "reset"),
        },
    ),
    # Limited to one transport or port, a mode leaves the rest alone.
    "drop-udp": ({"mode": "drop", "protocol": "udp"}, {n: everywhere("timeout")[n] for n in UDP}),
    "reject-one-port": (
        {"mode": "reject", "protocol": "tcp", "port": 4443},
        {"obfs4": ("refused", "connect")},
    ),
    # Held longer than the probe waits, the first packet's answer never comes in time.
    "delay-beyond-timeout": ({"mode": "delay", "ms": 1000}, everywhere("timeout")),
}


async def probe_all(lab: Lab, timeout: float = TIMEOUT) -> dict[str, Result]:
    names = list(PROTOCOLS)
    results = await asyncio.gather(
        *(
            run_probe(PROBES[lab.targets[name].protocol], lab.targets[name], timeout)
            for name in names
        )
    )
    return dict(zip(names, results, strict=True))


def outcome(result: Result) -> tuple[str, str]:
    return ("ok", "") if result.ok else (str(result.failure), result.stage)


@pytest.mark.parametrize("case", list(CASES))
async def test_mode_implies_failure(lab: Lab, censor: Censor, case: str) -> None:
    spec, expected = CASES[case]
    params = dict(spec)
    censor.apply(str(params.pop("mode")), **params)  # type: ignore[arg-type]
    results = await probe_all(lab)
    got = {name: outcome(result) for name, result in results.items()}
    want = {name: expected.get(name, OK) for name in PROTOCOLS}
    wrong = {name for name in PROTOCOLS if got[name] != want[name]}
    assert not wrong, {name: (got[name], results[name].detail) for name in wrong}


async def test_the_lab_works_without_a_censor(lab: Lab, censor: Censor) -> None:
    results = await probe_all(lab, timeout=5)
    assert all(r.ok for r in results.values()), results
