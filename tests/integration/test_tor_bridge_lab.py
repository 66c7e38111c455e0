"""The obfs4 probe's Tor link check against the real tor bridge (tor + obfs4proxy), and tor itself
as the client with the same bridge line, in a lab namespace this module creates.

One bridge serves the module (tor takes a second or two to start). A wrong fingerprint is a bridge
line whose identity the bridge cannot prove; an obfs4 bridge with no relay behind it is the lab's
echo bridge, whose backend answers TLS with our own bytes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vpnwatch.config import load_config
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge, Obfs4Server
from vpnwatch.lab.tor import TorBridgeServer, TorClient
from vpnwatch.probes.obfs4 import OBFS4
from vpnwatch.result import Failure, Result
from vpnwatch.targets.obfs4 import Obfs4Target

pytestmark = pytest.mark.lab

OK_TIMEOUT = 5.0
#: How long tor as a client may take to reach the bridge and fetch its descriptor.
CLIENT_SECONDS = 60.0
probe_obfs4 = OBFS4.probe()


@pytest.fixture(scope="module")
def bridge(namespace: Namespace) -> Iterator[Obfs4Bridge]:
    with TorBridgeServer(namespace) as bridge:
        yield bridge


@pytest.fixture(scope="module")
def echo_bridge(namespace: Namespace) -> Iterator[Obfs4Bridge]:
    with Obfs4Server(namespace, port=4461) as bridge:
        yield bridge


def configured(write: Callable[[str, str], Path], line: str) -> Obfs4Target:
    """The bridge line as a user adds it, with ``data: tor`` in the configuration file."""
    write("bridge.txt", line + "\n")
    config = write("vpnwatch.yml", "targets: [{from: bridge.txt, data: tor}]\n")
    [job] = load_config(config).jobs
    assert isinstance(job.target, Obfs4Target)
    return job.target


def stage_names(result: Result) -> list[str]:
    return [stage for stage, _ in result.stages]


async def test_the_bridge_proves_its_fingerprint_and_opens_a_circuit(
    bridge: Obfs4Bridge, write: Callable[[str, str], Path]
) -> None:
    result = await probe_obfs4(configured(write, bridge.bridge_line()), OK_TIMEOUT)
    assert result.ok, result
    assert stage_names(result) == ["resolve", "connect", "handshake", "link", "data"]
    assert f"relay {bridge.fingerprint} (Ed25519 " in result.detail
    assert "circuit created and destroyed" in result.detail


async def test_a_fingerprint_the_bridge_cannot_prove_fails_at_link(
    bridge: Obfs4Bridge, write: Callable[[str, str], Path]
) -> None:
    wrong = os.urandom(20).hex().upper()
    result = await probe_obfs4(configured(write, bridge.bridge_line(fingerprint=wrong)), OK_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TLS_CERT, "link"), result
    assert stage_names(result) == ["resolve", "connect", "handshake"]
    assert f"proves identity {bridge.fingerprint}, not the bridge line's {wrong}" in result.detail


async def test_an_obfs4_bridge_with_no_relay_behind_it_fails_tls(
    echo_bridge: Obfs4Bridge, write: Callable[[str, str], Path]
) -> None:
    """The echo backend sends our ClientHello back: TLS fails inside a verified obfs4 session."""
    result = await probe_obfs4(configured(write, echo_bridge.bridge_line()), OK_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TLS, "link"), result
    assert stage_names(result) == ["resolve", "connect", "handshake"]


def tor_client_sees(line: str, pattern: str) -> str:
    with TorClient(line) as client:
        return client.wait_for(pattern, CLIENT_SECONDS)


async def test_tor_as_the_client_agrees(
    bridge: Obfs4Bridge, write: Callable[[str, str], Path]
) -> None:
    """Tor with the same bridge lines: it fetches the descriptor of the bridge the probe passed
    (which takes the link handshake and a circuit through the bridge) and refuses, naming the
    identity it got, the bridge the probe failed."""
    wrong = os.urandom(20).hex().upper()
    good_line, wrong_line = bridge.bridge_line(), bridge.bridge_line(fingerprint=wrong)
    fetched, refused, ours_good, ours_wrong = await asyncio.gather(
        asyncio.to_thread(tor_client_sees, good_line, r"new bridge descriptor"),
        asyncio.to_thread(tor_client_sees, wrong_line, r"identity keys were not as expected"),
        probe_obfs4(configured(write, good_line), OK_TIMEOUT),
        probe_obfs4(configured(write, wrong_line), OK_TIMEOUT),
    )
    assert f"${bridge.fingerprint}~vpnwatchlab" in fetched
    assert ours_good.ok, ours_good
    assert f"wanted {wrong}" in refused and f"got {bridge.fingerprint}" in refused
    assert ours_wrong.failure is Failure.TLS_CERT
