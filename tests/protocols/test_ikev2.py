"""IKEv2's parts against published vectors, and the machine against input no responder sends."""

from __future__ import annotations

import os

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.machines import drain
from tests.vectors.ikev2 import captures
from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2.esp import EspSa
from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.initiator import IkeInitiator, IkeSettings
from vpnwatch.protocols.ikev2.mschapv2 import (
    CHALLENGE,
    EAP_MSCHAPV2,
    EAP_REQUEST,
    EAP_RESPONSE,
    EAP_SUCCESS,
    FAILURE,
    RESPONSE,
    SUCCESS,
    EapMsChapV2Client,
    EapRefused,
    EapReply,
    EapSucceeded,
    authenticator_response,
    challenge_hash,
    eap_packet,
    md4,
    mschapv2_packet,
    nt_hash,
    nt_response,
)
from vpnwatch.protocols.ikev2.transforms import DirectionKeys, Suite
from vpnwatch.protocols.ikev2.tunnel import EspTunnel
from vpnwatch.protocols.machine import Failed
from vpnwatch.result import Failure
from vpnwatch.targets.ikev2 import IKEv2Target

# RFC 1320 appendix A.5.
MD4_VECTORS = {
    b"": "31d6cfe0d16ae931b73c59d7e0c089c0",
    b"a": "bde52cb31de33e46245e05fbdbd6fb24",
    b"abc": "a448017aaf21d8525fc10ae87aa6729d",
    b"message digest": "d9130a8164549fe818874806e1c7014b",
    b"1234567890" * 8: "e33b4ddc9c38f2199c3e7b164fcc0536",
}


@pytest.mark.parametrize(("data", "digest"), MD4_VECTORS.items())
def test_md4_matches_rfc_1320(data: bytes, digest: str) -> None:
    assert md4(data).hex() == digest


def test_mschapv2_matches_rfc_2759s_example() -> None:
    """RFC 2759 section 9.2: user "User", password "clientPass"."""
    password_hash = nt_hash("clientPass")
    assert password_hash.hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    challenge = challenge_hash(
        bytes.fromhex("21402324255E262A28295F2B3A337C7E"),
        bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628"),
        "User",
    )
    assert challenge.hex().upper() == "D02E4386BCE91226"
    response = nt_response(password_hash, challenge)
    assert response.hex().upper() == "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
    expected = "407A5589115FD0D6209F510FE9C04566932CDA56"
    assert authenticator_response(password_hash, response, challenge).hex().upper() == expected


@pytest.mark.parametrize(
    ("text", "kind", "data"),
    [
        ("192.0.2.1", p.ID_IPV4_ADDR, bytes([192, 0, 2, 1])),
        ("2001:db8::1", p.ID_IPV6_ADDR, bytes.fromhex("20010db8000000000000000000000001")),
        ("vpn.example.invalid", p.ID_FQDN, b"vpn.example.invalid"),
        ("@vpn.example.invalid", p.ID_FQDN, b"vpn.example.invalid"),
        ("alice@example.invalid", p.ID_RFC822_ADDR, b"alice@example.invalid"),
        ("@#0a0b", p.ID_KEY_ID, b"\x0a\x0b"),
    ],
)
def test_identities_as_strongswan_reads_them(text: str, kind: int, data: bytes) -> None:
    assert (Identity.parse(text).id_type, Identity.parse(text).data) == (kind, data)


def test_a_distinguished_name_keeps_its_written_order() -> None:
    identity = Identity.parse("C=CH, O=Org, CN=gw")
    assert identity.id_type == p.ID_DER_ASN1_DN
    assert x509.Name.from_rfc4514_string("CN=gw,O=Org,C=CH").public_bytes() == identity.data


def test_proposals_round_trip() -> None:
    proposals = [
        p.Proposal(1, p.PROTO_IKE, b"", ((1, 20, 256), (2, 5, None), (4, 19, None))),
        p.Proposal(
            2, p.PROTO_ESP, b"\x01\x02\x03\x04", ((1, 12, 128), (3, 12, None), (5, 0, None))
        ),
    ]
    assert p.parse_sa(p.encode_sa(proposals)) == proposals


def started() -> tuple[IkeInitiator, bytes]:
    capture = captures()["psk"]
    machine = capture.initiator()
    machine.start(0.0)
    return machine, machine.data_to_send(0.0)[0]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_ends_a_probe_and_never_raises(data: bytes) -> None:
    machine, _ = started()
    machine.receive(data, 0.1)
    assert not machine.finished and drain(machine) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_behind_our_spi_never_raises(tail: bytes) -> None:
    """Bytes that pass the header checks (our SPI, a response to message 0) but nothing more."""
    machine, first = started()
    body = tail
    header = p.Header(
        first[:8],
        os.urandom(8),
        tail[0] if tail else 0,
        p.IKE_SA_INIT,
        p.FLAG_RESPONSE,
        0,
        p.HEADER_SIZE + len(body),
    )
    machine.receive(header.encode() + body, 0.1)
    assert not machine.finished


def test_retransmits_as_strongswan_does_then_times_out() -> None:
    machine, first = started()
    assert machine.timer() == 4.0
    machine.handle_timer(4.0)
    assert machine.data_to_send(4.0) == [first]
    assert machine.timer() == pytest.approx(4.0 + 7.2)
    assert machine.timed_out() == Failed(Failure.TIMEOUT, "no valid answer to IKE_SA_INIT")


def test_settings_carry_no_secret_in_their_repr() -> None:
    settings_ = IkeSettings(
        local_id=Identity.parse("a@b.invalid"), psk=b"hunter2", eap=("u", "pw-secret")
    )
    assert "hunter2" not in repr(settings_) and "pw-secret" not in repr(settings_)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"psk": "k", "username": "u", "password": "p"}, "give exactly one way to authenticate"),
        ({}, "give exactly one way to authenticate"),
        ({"psk": "k"}, "local_id is required"),
        ({"psk": "k", "local_id": "a@b.invalid", "remote_auth": "pubkey"}, "ca is required"),
        ({"username": "u", "password": "p"}, "ca is required"),
        ({"psk": "k", "local_id": "a@b.invalid", "groups": [1]}, "Diffie-Hellman groups"),
        ({"username": "u", "password": "p", "ca": "nope"}, "is not a PEM certificate"),
    ],
)
def test_target_mistakes(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IKEv2Target.model_validate({"name": "t", "host": "192.0.2.1", **fields})
    assert message in str(caught.value)
    assert "hunter" not in str(caught.value)


def test_a_psk_alone_means_the_gateway_proves_the_same_key() -> None:
    target = IKEv2Target(name="t", host="192.0.2.1", psk="k", local_id="a@b.invalid")
    assert (target.effective_remote_auth, target.port, target.transport) == ("psk", 500, "udp")
    assert "k" not in repr(target.psk)


def challenge_request(identifier: int = 7) -> bytes:
    value = bytes([16]) + bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628") + b"gw"
    return eap_packet(EAP_REQUEST, identifier, EAP_MSCHAPV2, mschapv2_packet(CHALLENGE, 1, value))


def rfc_2759_client() -> EapMsChapV2Client:
    return EapMsChapV2Client(
        "User", "clientPass", bytes.fromhex("21402324255E262A28295F2B3A337C7E")
    )


def test_eap_mschapv2_answers_with_rfc_2759s_response_and_checks_the_servers_proof() -> None:
    client = rfc_2759_client()
    identity = client.answer(eap_packet(EAP_REQUEST, 1, 1))
    assert identity == EapReply(eap_packet(EAP_RESPONSE, 1, 1, b"User"))
    reply = client.answer(challenge_request())
    assert isinstance(reply, EapReply)
    assert reply.packet[5:9] == bytes([RESPONSE, 1]) + (4 + 1 + 49 + 4).to_bytes(2, "big")
    assert reply.packet[34:58].hex().upper() == "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
    success = b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=welcome"
    ack = client.answer(
        eap_packet(EAP_REQUEST, 8, EAP_MSCHAPV2, mschapv2_packet(SUCCESS, 1, success))
    )
    assert ack == EapReply(eap_packet(EAP_RESPONSE, 8, EAP_MSCHAPV2, bytes([SUCCESS])))
    done = client.answer(eap_packet(EAP_SUCCESS, 9))
    assert isinstance(done, EapSucceeded) and len(done.msk) == 64 and done.msk[32:] == bytes(32)


def test_eap_mschapv2_refuses_a_server_that_does_not_know_the_password() -> None:
    client = rfc_2759_client()
    client.answer(challenge_request())
    forged = b"S=" + b"0" * 40
    step = client.answer(
        eap_packet(EAP_REQUEST, 8, EAP_MSCHAPV2, mschapv2_packet(SUCCESS, 1, forged))
    )
    assert step == EapRefused(True, "the responder's MSCHAPv2 success does not prove the password")
    assert client.answer(eap_packet(EAP_SUCCESS, 9)) == EapRefused(
        False, "EAP success before the server proved the password"
    )


def test_eap_mschapv2_failure_is_acknowledged_and_refused() -> None:
    client = rfc_2759_client()
    client.answer(challenge_request())
    failure = mschapv2_packet(FAILURE, 1, b"E=691 R=1 C=00000000000000000000000000000000 V=3")
    step = client.answer(eap_packet(EAP_REQUEST, 8, EAP_MSCHAPV2, failure))
    assert step == EapRefused(
        True,
        "EAP-MSCHAPv2 refused the login (E=691)",
        eap_packet(EAP_RESPONSE, 8, EAP_MSCHAPV2, bytes([FAILURE])),
    )


def test_another_eap_method_is_answered_with_a_nak_for_mschapv2() -> None:
    step = rfc_2759_client().answer(eap_packet(EAP_REQUEST, 3, 4, b"md5 challenge"))
    assert step == EapReply(eap_packet(EAP_RESPONSE, 3, 3, bytes([EAP_MSCHAPV2])))


def test_the_esp_tunnel_opens_only_what_authenticates() -> None:
    keys = DirectionKeys(Suite(20, 128), bytes(20), b"")
    ours = EspSa(keys, keys, b"\x00\x00\x00\x01", b"\x00\x00\x00\x01", bytes)
    tunnel = EspTunnel(ours)
    [sealed] = tunnel.seal(b"\x45inner packet")
    assert tunnel.open(sealed) == [b"\x45inner packet"]
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert tunnel.open(tampered) == [] and tunnel.open(p.NON_ESP_MARKER + sealed) == []
    assert tunnel.open(b"\xff") == [] and tunnel.flush() == []
