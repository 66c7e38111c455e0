"""obfs4 on the driver: an :class:`Obfs4Client` per probe, keyed by the target's bridge line, with
the Tor link check or an echo inside its session as the target's ``data`` asks."""

from __future__ import annotations

import time

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.machine import Machine
from vpnwatch.protocols.obfs4.client import Obfs4Client
from vpnwatch.protocols.obfs4.echo import EchoCheck
from vpnwatch.protocols.tor.channel import TorChannelClient
from vpnwatch.protocols.tor.link import peer_address
from vpnwatch.targets.obfs4 import Obfs4Target


def _data_check(target: Obfs4Target, unix_time: float) -> Machine | None:
    if target.data == "echo":
        return EchoCheck()
    if target.data == "tor":
        assert target.fingerprint is not None  # the target's validator demands one
        return TorChannelClient.for_relay(
            target.fingerprint, unix_time=unix_time, peer_address=peer_address(target.host)
        )
    return None


def _client(target: Obfs4Target) -> Obfs4Client:
    unix_time = time.time()
    return Obfs4Client(
        target.node_id,
        target.public_key,
        unix_time=unix_time,
        inner=_data_check(target, unix_time),
    )


OBFS4: ProbeSpec[Obfs4Target] = ProbeSpec(machine=_client)
