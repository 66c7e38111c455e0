"""Every protocol that takes a host name resolves it in its own ``resolve`` stage.

A name that does not resolve is the network's answer about the endpoint (``dns``), reported at
``resolve`` before anything is sent, whatever the protocol: not at OpenVPN's ``reset`` or obfs4's
``connect``. The one driver does this for every machine; this holds each registered protocol to it,
so a new protocol must add its sample here.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from vpnwatch.lab.openvpn import generate_pki
from vpnwatch.probes.registry import PROBES
from vpnwatch.registry import PROTOCOLS, target_model
from vpnwatch.result import Failure

UNRESOLVABLE = "vpn.vpnwatch-resolve.invalid"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


SAMPLES: dict[str, dict[str, Any]] = {
    "wireguard": {"private_key": _key(), "public_key": _key(), "port": 51820},
    "openvpn": {"ca": generate_pki().ca, "port": 1194, "proto": "udp"},
    "openvpn-tcp": {"ca": generate_pki().ca, "port": 1194, "proto": "tcp"},
    "obfs4": {"node_id": os.urandom(20), "public_key": os.urandom(32), "iat_mode": 0, "port": 443},
    "shadowsocks": {"method": "aes-256-gcm", "password": "x", "port": 8388},
    "trojan": {"password": "x"},
    "ikev2": {"psk": "a shared key", "local_id": "probe@example.invalid", "port": 500},
    "anyconnect": {"username": "probe", "password": "x", "group": "lab"},
    "tcp": {"port": 443},
    "tls": {"port": 443},
    "dns": {"query": "example.org"},
}


def test_every_registered_protocol_has_a_sample() -> None:
    assert {name.partition("-")[0] for name in SAMPLES} == set(PROTOCOLS)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
async def test_an_unresolvable_name_fails_at_resolve_with_dns(sample: str) -> None:
    protocol = sample.partition("-")[0]
    model = target_model(protocol)
    assert model is not None
    target = model.model_validate({"name": sample, "host": UNRESOLVABLE, **SAMPLES[sample]})
    result = await PROBES[protocol](target, 5.0)
    assert (result.ok, result.failure, result.stage, result.stages) == (
        False,
        Failure.DNS,
        "resolve",
        (),
    ), result
    assert UNRESOLVABLE in result.detail
