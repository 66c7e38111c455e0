"""IKEv2's CPU per probe against its cryptographic floor: ``sudo python -m benchmarks.ikev2``.

The same method as :mod:`benchmarks.cost` (a bounded batch through ``run_probe``, the process's
CPU over the batch per probe), against the lab's charon, for each setup and without and with the
echo through the child SA. The floor is the public-key work the initiator cannot do without, timed
here with ``cryptography`` (charon's side runs in another process and is not counted):

* every setup: one P-256 key pair and one ECDH (the gateway picks ecp256 from our proposals);
* certificates: our ECDSA signature, and two verifications (the gateway's AUTH, and the CA's
  signature on the gateway's certificate);
* EAP-MSCHAPv2: the two verifications (the gateway signs; we log in with the password), and the
  MSCHAPv2 hashing (MD4, written in Python here) is shown apart, as obfs4's Elligator is.

Prints one JSON object; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.cost import CONCURRENCY, FLOOR_ROUNDS, _row, run_batch
from benchmarks.floors import _seconds_each
from vpnwatch.importers import load_file
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.strongswan import CharonGateway
from vpnwatch.protocols.ikev2.mschapv2 import MsChapV2Peer
from vpnwatch.targets.ikev2 import IKEv2Target

SETUPS = ("psk", "cert", "eap")


def floor(setup: str, rounds: int) -> float:
    """CPU seconds of one probe's public-key work in ``setup``."""
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    signer = ec.generate_private_key(ec.SECP256R1())
    message = bytes(300)
    signature = signer.sign(message, ec.ECDSA(hashes.SHA256()))

    def work() -> None:
        ec.generate_private_key(ec.SECP256R1()).exchange(ec.ECDH(), peer)
        if setup == "cert":
            signer.sign(message, ec.ECDSA(hashes.SHA256()))
        if setup in ("cert", "eap"):
            for _ in range(2):
                signer.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))

    return _seconds_each(work, rounds)


def mschapv2_cost(rounds: int) -> float:
    """CPU seconds of one MSCHAPv2 login's hashing (NT hash, response, MSK)."""

    def login() -> None:
        peer = MsChapV2Peer("eap-probe", "a password of sixteen", bytes(16))
        peer.respond(bytes(16))
        peer.msk()

    return _seconds_each(login, rounds)


async def measure(gateway: CharonGateway, directory: Path, count: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for setup in SETUPS:
        [target] = load_file(gateway.client_conf(directory / setup, setup).path)
        assert isinstance(target, IKEv2Target)
        echo = target.model_copy(update={"echo": ipaddress.IPv4Address(gateway.echo_address)})
        cost = floor(setup, FLOOR_ROUNDS)
        for name, probed in ((setup, target), (f"{setup} + echo", echo)):
            batch = await run_batch(f"ikev2 {name}", [probed], count)
            rows[f"ikev2 {name}"] = _row(batch, cost, f"public-key work of the {setup} setup")
    rows["ikev2 eap"]["mschapv2_us"] = round(mschapv2_cost(FLOOR_ROUNDS) * 1e6)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=500, help="probes per batch")
    args = parser.parse_args()
    with (
        Namespace() as namespace,
        CharonGateway(namespace) as gateway,
        tempfile.TemporaryDirectory() as directory,
    ):
        rows = asyncio.run(measure(gateway, Path(directory), max(CONCURRENCY, args.probes)))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
