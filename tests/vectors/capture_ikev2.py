"""Capture ``ikev2.json``: the IKEv2 initiator, its inputs fixed, against the real charon.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_ikev2``. Each capture
runs :class:`IkeInitiator` through the probe driver against the lab gateway (charon with
kernel-libipsec), with randomness drawn from fixed labels, and writes down those inputs, the
credentials of the run (test-only: a fresh lab CA every time) and each datagram either side sent.

Captures: a PSK, a certificate and an EAP-MSCHAPv2 login, each with an echo through the child
SA and the delete; one that starts with ecp384, which the gateway lacks (INVALID_KE_PAYLOAD,
then ecp256); a wrong PSK (AUTHENTICATION_FAILED); and one where the gateway demands a COOKIE,
which it does once a half-open SA from elsewhere reaches its ``cookie_threshold`` of 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time

from tests.vectors.ikev2 import VECTORS, IkeCapture, settings_from
from tests.vectors.written import debian_versions, write_vectors
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.strongswan import CERT_ID, EAP_USER, GATEWAY_ID, PSK_ID, CharonGateway
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.ikev2.initiator import IkeInitiator
from vpnwatch.targets.ikev2 import IKEv2Target

TIMEOUT = 5.0


def seeded(label: str, length: int) -> bytes:
    """Fixed bytes for ``label``: our side's inputs are the same every time a capture is made."""
    out, counter = b"", 0
    while len(out) < length:
        out += hashlib.blake2b(f"{label}/{counter}".encode(), digest_size=64).digest()
        counter += 1
    return out[:length]


class Recording(IkeInitiator):
    """The initiator, writing down its draws and each datagram between it and the driver."""

    def __init__(self, label: str, fields: dict[str, object], wall_time: float) -> None:
        self.draws: list[bytes] = []
        self.transcript: list[tuple[str, bytes]] = []
        self._label = label

        def random(length: int) -> bytes:
            self.draws.append(seeded(f"{label}/draw/{len(self.draws)}", length))
            return self.draws[-1]

        super().__init__(settings_from(fields), wall_time=wall_time, random=random)

    def receive(self, data: bytes, now: float) -> None:
        self.transcript.append(("server", data))
        super().receive(data, now)

    def data_to_send(self, now: float) -> list[bytes]:
        out = super().data_to_send(now)
        self.transcript += [("client", datagram) for datagram in out]
        return out


def fields_for(gateway: CharonGateway, setup: str, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "remote_id": GATEWAY_ID,
        "remote_auth": "pubkey",
        "ca_pem": gateway.ca.cert,
        "groups": [19, 20, 31, 14],
        "echo": gateway.echo_address,
        "responder": [gateway.host, 500],
    }
    if setup == "psk":
        fields |= {"local_id": PSK_ID, "psk": gateway.psk, "remote_auth": "psk", "ca_pem": None}
    elif setup == "cert":
        fields |= {
            "local_id": CERT_ID,
            "cert_pem": gateway.client_cert.cert,
            "key_pem": gateway.client_cert.key,
        }
    else:
        fields |= {"local_id": EAP_USER, "eap": [EAP_USER, gateway.eap_password]}
    return fields | changes


async def capture(
    gateway: CharonGateway, name: str, fields: dict[str, object], ok: bool
) -> IkeCapture:
    wall_time = float(int(time.time()))
    recording = Recording(name, fields, wall_time)
    target = IKEv2Target(name=name, host=gateway.host, local_id="x@lab.invalid", psk="unused")
    result = await ProbeSpec(machine=lambda _: recording).probe()(target, TIMEOUT)
    if result.ok != ok:
        raise SystemExit(f"{name}: expected ok={ok}, got {result}\n{gateway.log_tail()}")
    return IkeCapture(name, fields, wall_time, tuple(recording.draws), tuple(recording.transcript))


def half_open(gateway: CharonGateway) -> socket.socket:
    """An IKE_SA_INIT from another socket that stays half-open at the gateway."""
    stranger = Recording("stranger", fields_for(gateway, "psk"), time.time())
    stranger.start(0.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((gateway.host, 500))
    sock.send(stranger.data_to_send(0.0)[0])
    sock.settimeout(2.0)
    sock.recv(2048)
    return sock


def main() -> None:
    made: list[IkeCapture] = []
    with Namespace() as namespace:
        with CharonGateway(
            namespace, psk="vectors-psk", eap_password="vectors-password"
        ) as gateway:
            made.append(asyncio.run(capture(gateway, "psk", fields_for(gateway, "psk"), True)))
            made.append(asyncio.run(capture(gateway, "cert", fields_for(gateway, "cert"), True)))
            made.append(asyncio.run(capture(gateway, "eap", fields_for(gateway, "eap"), True)))
            made.append(
                asyncio.run(
                    capture(gateway, "ke-retry", fields_for(gateway, "psk", groups=[20, 19]), True)
                )
            )
            made.append(
                asyncio.run(
                    capture(gateway, "wrong-psk", fields_for(gateway, "psk", psk="not-it"), False)
                )
            )
        with (
            CharonGateway(namespace, psk="vectors-psk", cookie_threshold=1) as gateway,
            half_open(gateway),
        ):
            made.append(asyncio.run(capture(gateway, "cookie", fields_for(gateway, "psk"), True)))
    write_vectors(
        VECTORS,
        "IKEv2 with the real charon; written by python -m tests.vectors.capture_ikev2, "
        "replayed by tests/protocols/test_ikev2_vectors.py",
        debian_versions("strongswan-charon"),
        made,
    )


if __name__ == "__main__":
    main()
