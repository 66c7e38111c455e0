"""obfs4 on the driver: an :class:`Obfs4Client` per probe, keyed by the target's bridge line."""

from __future__ import annotations

import time

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.obfs4.client import Obfs4Client
from vpnwatch.targets.obfs4 import Obfs4Target


def _client(target: Obfs4Target) -> Obfs4Client:
    return Obfs4Client(
        target.node_id, target.public_key, unix_time=time.time(), echo=target.data == "echo"
    )


OBFS4: ProbeSpec[Obfs4Target] = ProbeSpec(machine=_client)
