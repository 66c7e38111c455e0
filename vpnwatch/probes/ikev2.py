"""IKEv2 on the driver: an :class:`IkeInitiator` per probe, built from an :class:`IKEv2Target`.

A probe ends at ``ike_auth``, or with one echo through the child SA (``data``) when the target
names an ``echo`` address. A tunnel test holds the SA up after ``ike_auth`` and runs the echo train
through the child SA (:mod:`vpnwatch.protocols.ikev2.tunnel`), then deletes the SA.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import replace

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.initiator import (
    NAT_T_PORT,
    IkeInitiator,
    IkeSettings,
    LocalCertificate,
)
from vpnwatch.protocols.ikev2.tunnel import EspTunnel, Goodbye
from vpnwatch.protocols.machine import LocalProtocolError, Machine
from vpnwatch.protocols.tunnel import Chain, TunnelTest
from vpnwatch.quality import TrainPlan
from vpnwatch.targets.ikev2 import IKEv2Target

#: Parsed PEM text, per text: a target's CA, certificate and key are the same on every probe,
#: and parsing them again each time is work no handshake needs.
_PARSED = 256


@functools.lru_cache(maxsize=_PARSED)
def _certificates(pem: str) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(pem.encode()))


@functools.lru_cache(maxsize=_PARSED)
def _local_certificate(cert: str, key: str) -> LocalCertificate:
    private = load_pem_private_key(key.encode(), password=None)
    return LocalCertificate(x509.load_pem_x509_certificate(cert.encode()), private)


def settings_of(target: IKEv2Target, *, hold_sa: bool = False) -> IkeSettings:
    """What the machine needs, from a validated target."""
    certificate = None
    if target.cert is not None and target.key is not None:
        certificate = _local_certificate(target.cert, target.key.get_secret_value())
    try:
        ipaddress.ip_address(target.host)
        responder: tuple[str, int] | None = (target.host, target.port)
    except ValueError:
        responder = None
    eap = None
    if target.username is not None and target.password is not None:
        eap = (target.username, target.password.get_secret_value())
    return IkeSettings(
        local_id=Identity.parse(target.local_id or target.username or ""),
        remote_id=Identity.parse(target.remote_id) if target.remote_id else None,
        psk=target.psk.get_secret_value().encode() if target.psk else None,
        certificate=certificate,
        eap=eap,
        remote_auth=target.effective_remote_auth,
        cas=_certificates(target.ca) if target.ca else (),
        groups=target.groups,
        echo=target.echo,
        responder=responder,
        start_encapsulated=target.port == NAT_T_PORT,
        hold_sa=hold_sa,
    )


def _initiator(target: IKEv2Target) -> IkeInitiator:
    return IkeInitiator(settings_of(target), wall_time=time.time())


def _tunnel_test(target: IKEv2Target, plan: TrainPlan) -> Machine:
    destination = target.echo
    if destination is None:
        raise LocalProtocolError(f"{target.name} has no echo address to test its tunnel with")
    settings = replace(settings_of(target, hold_sa=True), echo=None)
    initiator = IkeInitiator(settings, wall_time=time.time())

    def echoes(handshake: Machine) -> Machine:
        assert handshake is initiator
        child, source = initiator.child_sa, initiator.inner_address
        assert child is not None and source is not None  # hold_sa completes only with both
        return TunnelTest(EspTunnel(child), source, destination, plan)

    return Goodbye(Chain(initiator, echoes, TunnelTest.stages), initiator)


IKEV2: ProbeSpec[IKEv2Target] = ProbeSpec(machine=_initiator, tunnel=_tunnel_test)
