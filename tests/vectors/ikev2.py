"""IKEv2 conversations with the real charon (``ikev2.json``), with every input our side was given.

A capture holds the test-only credentials made for it (a lab CA, the client's certificate and key,
a pre-shared key, an EAP password), the wall time the probe ran at, every draw of randomness the
initiator took (SPI, nonce, Diffie-Hellman key, child SPI, IVs, the MSCHAPv2 peer challenge, the
echo identifier) and each datagram either side sent, in order. The gateway's datagrams are
charon's own: an initiator given the same inputs must send the same bytes and accept the answers.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.machines import drain
from tests.vectors.draws import replay_draws
from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.initiator import IkeInitiator, IkeSettings, LocalCertificate
from vpnwatch.protocols.machine import Event

VECTORS = Path(__file__).with_name("ikev2.json")


@dataclass(frozen=True)
class IkeCapture:
    """One probe's conversation with the real gateway, and what the initiator was given."""

    name: str
    #: The target's fields that make the settings (identities, secrets, PEM text, echo, groups).
    settings: dict[str, object]
    wall_time: float
    draws: tuple[bytes, ...]
    #: ("client" | "server", datagram), in the order they were sent and received.
    transcript: tuple[tuple[str, bytes], ...]

    def sent(self, side: str) -> list[bytes]:
        return [data for who, data in self.transcript if who == side]

    def ike_settings(self) -> IkeSettings:
        return settings_from(self.settings)

    def initiator(self, **changes: object) -> IkeInitiator:
        settings = settings_from({**self.settings, **changes})
        return IkeInitiator(
            settings, wall_time=self.wall_time, random=replay_draws(self.name, self.draws)
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "settings": self.settings,
            "wall_time": self.wall_time,
            "draws": [draw.hex() for draw in self.draws],
            "transcript": [[side, data.hex()] for side, data in self.transcript],
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> IkeCapture:
        draws, transcript, settings = item["draws"], item["transcript"], item["settings"]
        assert (
            isinstance(draws, list) and isinstance(transcript, list) and isinstance(settings, dict)
        )
        wall_time = item["wall_time"]
        assert isinstance(wall_time, float)
        return cls(
            name=str(item["name"]),
            settings=settings,
            wall_time=wall_time,
            draws=tuple(bytes.fromhex(draw) for draw in draws),
            transcript=tuple((side, bytes.fromhex(data)) for side, data in transcript),
        )


def settings_from(fields: dict[str, object]) -> IkeSettings:
    """The machine's settings from a capture's recorded fields."""
    certificate = None
    if fields.get("cert_pem"):
        certificate = LocalCertificate(
            x509.load_pem_x509_certificate(str(fields["cert_pem"]).encode()),
            load_pem_private_key(str(fields["key_pem"]).encode(), password=None),
        )
    cas = (
        tuple(x509.load_pem_x509_certificates(str(fields["ca_pem"]).encode()))
        if fields.get("ca_pem")
        else ()
    )
    eap = fields.get("eap")
    groups = fields.get("groups")
    responder = fields.get("responder")
    assert isinstance(groups, list) and isinstance(responder, list)
    return IkeSettings(
        local_id=Identity.parse(str(fields["local_id"])),
        remote_id=Identity.parse(str(fields["remote_id"])) if fields.get("remote_id") else None,
        psk=str(fields["psk"]).encode() if fields.get("psk") else None,
        certificate=certificate,
        eap=(str(eap[0]), str(eap[1])) if isinstance(eap, list) else None,
        remote_auth=str(fields["remote_auth"]),
        cas=cas,
        groups=tuple(int(g) for g in groups),
        echo=ipaddress.IPv4Address(str(fields["echo"])) if fields.get("echo") else None,
        responder=(str(responder[0]), int(responder[1])),
    )


def replay(
    capture: IkeCapture, machine: IkeInitiator | None = None
) -> tuple[list[bytes], list[Event]]:
    """Run an initiator through the capture: what it sent, and every event it reported.

    Timers due at once (the IKE_AUTH held back until the move to UDP 4500) fire as the driver
    would fire them; no retransmission is due within the replay's millisecond steps.
    """
    machine = machine or capture.initiator()
    now = 0.0
    machine.start(now)
    sent = machine.data_to_send(now)
    events: list[Event] = drain(machine)
    for datagram in capture.sent("server"):
        now += 0.001
        machine.receive(datagram, now)
        sent += machine.data_to_send(now)
        events += drain(machine)
        while (due := machine.timer()) is not None and due <= now:
            machine.handle_timer(now)
            sent += machine.data_to_send(now)
            events += drain(machine)
    return sent, events


@cache
def captures() -> dict[str, IkeCapture]:
    document = json.loads(VECTORS.read_text())
    return {item["name"]: IkeCapture.from_json(item) for item in document["captures"]}
