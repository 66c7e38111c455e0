"""Known answers from the real charon (tests/vectors/ikev2.json), replayed offline.

Given the inputs a capture recorded, the initiator must send byte for byte what went to the real
gateway and accept its answers, through IKE_SA_INIT (with an INVALID_KE_PAYLOAD or COOKIE retry),
IKE_AUTH (PSK, certificate, EAP-MSCHAPv2), the ESP echo and the delete. The one exception is the
certificate setup's IKE_AUTH: ECDSA draws its nonce from OpenSSL, which nobody can inject, so
there the signature is checked with ``cryptography`` instead. Tampered answers and wrong
credentials show what the initiator refuses.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.vectors.ikev2 import IkeCapture, captures, replay
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2.initiator import IkeInitiator
from vpnwatch.protocols.machine import Completed, Failed, Redirected, StageCompleted
from vpnwatch.result import Failure

OK = ["psk", "cert", "eap", "ke-retry", "cookie"]
# An ECDSA P-256 signature in DER is 72 bytes at most and a few shorter when r or s has a zero top
# byte; the SK payload then pads to its cipher block, 16 bytes at most.
_DER_SIGNATURE_SLACK = 16


def ike(datagram: bytes) -> bytes:
    """The IKE message in a datagram, without the non-ESP marker of UDP 4500."""
    return datagram[4:] if datagram.startswith(p.NON_ESP_MARKER) else datagram


def header(datagram: bytes) -> p.Header:
    return p.parse_header(ike(datagram))


def notifies(datagram: bytes) -> list[tuple[int, bytes]]:
    message = ike(datagram)
    found = p.parse_payloads(header(datagram).next_payload, message[p.HEADER_SIZE :])
    return [p.parse_notify(x.body) for x in found if x.kind == p.NOTIFY]


@pytest.mark.parametrize("name", OK)
def test_the_same_inputs_send_the_same_bytes_and_the_real_answers_complete(name: str) -> None:
    capture = captures()[name]
    sent, events = replay(capture)
    recorded = capture.sent("client")
    if name == "cert":  # see the module docstring: only the signature may differ
        auth = 1
        assert abs(len(sent[auth]) - len(recorded[auth])) <= _DER_SIGNATURE_SLACK
        assert sent[:auth] + sent[auth + 1 :] == recorded[:auth] + recorded[auth + 1 :]
    else:
        assert sent == recorded
    assert events[:2] == [StageCompleted("ike_sa_init"), Redirected(4500)]
    assert events[2:4] == [StageCompleted("ike_auth"), StageCompleted("data")]
    [completed] = events[4:]
    assert isinstance(completed, Completed)
    assert f"echo from {capture.settings['echo']} came back" in completed.detail


def test_the_first_message_is_made_of_the_recorded_draws() -> None:
    capture = captures()["psk"]
    first = capture.sent("client")[0]
    spi_i, nonce = capture.draws[0], capture.draws[1]
    assert header(first).spi_i == spi_i and header(first).spi_r == bytes(8)
    payloads = p.parse_payloads(header(first).next_payload, first[p.HEADER_SIZE :])
    assert [x.body for x in payloads if x.kind == p.NONCE] == [nonce]
    # ecp256 from a 40-byte draw, reduced as the machine reduces it, gives the KE data sent.
    group, public = p.parse_ke(next(x.body for x in payloads if x.kind == p.KE))
    scalar = int.from_bytes(capture.draws[2], "big") % (_P256_ORDER - 1) + 1
    numbers = ec.derive_private_key(scalar, ec.SECP256R1()).public_key().public_numbers()
    assert (group, public) == (19, numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big"))


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def test_invalid_ke_payload_is_answered_with_the_group_asked_for() -> None:
    capture = captures()["ke-retry"]
    first_answer = capture.sent("server")[0]
    assert notifies(first_answer) == [(p.INVALID_KE_PAYLOAD, struct.pack("!H", 19))]
    retry = capture.sent("client")[1]
    found = p.parse_payloads(header(retry).next_payload, retry[p.HEADER_SIZE :])
    assert p.parse_ke(next(x.body for x in found if x.kind == p.KE))[0] == 19


def test_a_cookie_is_echoed_first_in_the_retry() -> None:
    capture = captures()["cookie"]
    [(kind, cookie)] = notifies(capture.sent("server")[0])
    assert kind == p.COOKIE
    retry = capture.sent("client")[1]
    assert header(retry).next_payload == p.NOTIFY
    assert notifies(retry)[0] == (p.COOKIE, cookie)


def test_a_wrong_psk_is_refused_by_the_real_gateway() -> None:
    _, events = replay(captures()["wrong-psk"])
    assert events[-1] == Failed(Failure.AUTH, "the responder answered AUTHENTICATION_FAILED")


def our_auth(capture: IkeCapture) -> tuple[int, bytes, bytes]:
    """(method, data, signed octets) of the AUTH we sent, found with hmac and cryptography alone.

    The gateway chose aes256gcm16-prfsha256-ecp256 (checked); the keys follow RFC 7296 2.14.
    """
    init, answer = ike(capture.sent("client")[0]), ike(capture.sent("server")[0])
    request = ike(capture.sent("client")[1])
    chosen = p.parse_payloads(header(answer).next_payload, answer[p.HEADER_SIZE :])
    by_kind = {x.kind: x.body for x in chosen}
    assert p.parse_sa(by_kind[p.SA])[0].transforms == ((1, 20, 256), (2, 5, None), (4, 19, None))
    _, peer = p.parse_ke(by_kind[p.KE])
    scalar = int.from_bytes(capture.draws[2], "big") % (_P256_ORDER - 1) + 1
    ours = ec.derive_private_key(scalar, ec.SECP256R1())
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + peer)
    shared = ours.exchange(ec.ECDH(), point)
    nonces = capture.draws[1] + by_kind[p.NONCE]
    seed = hmac.new(nonces, shared, hashlib.sha256).digest()
    stream, block, counter = b"", b"", 1
    while len(stream) < 32 + 36 + 36 + 32 + 32:
        block = hmac.new(
            seed, block + nonces + init[:8] + answer[8:16] + bytes([counter]), hashlib.sha256
        ).digest()
        stream += block
        counter += 1
    sk_ei, sk_pi = stream[32:68], stream[104:136]
    aad, sealed = request[:32], request[32:]
    plain = AESGCM(sk_ei[:32]).decrypt(sk_ei[32:] + sealed[:8], sealed[8:], aad)
    inner = p.parse_payloads(request[28], plain[: -1 - plain[-1]])
    id_i = next(x.body for x in inner if x.kind == p.IDI)
    method, data = p.parse_auth(next(x.body for x in inner if x.kind == p.AUTH))
    octets = init + by_kind[p.NONCE] + hmac.new(sk_pi, id_i, hashlib.sha256).digest()
    return method, data, octets


def test_the_psk_auth_we_sent_is_rfc_7296s() -> None:
    capture = captures()["psk"]
    method, data, octets = our_auth(capture)
    pad = hmac.new(
        str(capture.settings["psk"]).encode(), b"Key Pad for IKEv2", hashlib.sha256
    ).digest()
    assert (method, data) == (2, hmac.new(pad, octets, hashlib.sha256).digest())


def test_the_certificate_auth_we_sent_verifies_with_our_key() -> None:
    capture = captures()["cert"]
    method, data, octets = our_auth(capture)
    assert method == 14  # RFC 7427: length, AlgorithmIdentifier, signature
    algorithm, signature = data[1 : 1 + data[0]], data[1 + data[0] :]
    assert algorithm == bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
    cert = x509.load_pem_x509_certificate(str(capture.settings["cert_pem"]).encode())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, octets, ec.ECDSA(hashes.SHA256()))


def last(capture: IkeCapture, **changes: object) -> Failed:
    _, events = replay(capture, capture.initiator(**changes))
    assert isinstance(events[-1], Failed), events
    return events[-1]


def test_a_gateway_certificate_from_another_ca_is_refused() -> None:
    failed = last(captures()["cert"], ca_pem=CertificateAuthority.create("another").cert)
    assert failed.failure == Failure.TLS_CERT
    assert "not signed by the configured CA" in failed.detail


def test_a_gateway_with_another_identity_is_refused() -> None:
    failed = last(captures()["cert"], remote_id="other.lab.invalid")
    assert (failed.failure, failed.detail) == (
        Failure.AUTH,
        "the responder identified as another than other.lab.invalid",
    )


def test_a_psk_gateway_must_prove_the_same_key() -> None:
    failed = last(captures()["psk"], psk="another key")
    assert failed == Failed(
        Failure.AUTH, "the responder's AUTH does not verify with the shared key"
    )


def test_a_tampered_answer_is_ignored_as_noise() -> None:
    capture = captures()["psk"]
    machine = capture.initiator()
    machine.start(0.0)
    machine.data_to_send(0.0)
    init_answer, auth_answer = capture.sent("server")[:2]
    machine.receive(init_answer, 0.001)
    machine.handle_timer(0.001)
    tampered = bytearray(auth_answer)
    tampered[-1] ^= 1
    machine.receive(bytes(tampered), 0.002)
    assert not machine.finished
    machine.receive(auth_answer, 0.003)
    events = []
    while (event := machine.next_event()) is not None:
        events.append(event)
    assert StageCompleted("ike_auth") in events


def test_silence_after_a_no_proposal_chosen_is_a_protocol_failure() -> None:
    """An unauthenticated NO_PROPOSAL_CHOSEN does not end the probe; it colours the timeout."""
    capture = captures()["psk"]
    machine: IkeInitiator = capture.initiator()
    machine.start(0.0)
    first = header(machine.data_to_send(0.0)[0])
    refusal = p.encode_payloads([(p.NOTIFY, p.encode_notify(p.NO_PROPOSAL_CHOSEN))])
    answer = p.Header(
        first.spi_i,
        bytes(8),
        p.NOTIFY,
        p.IKE_SA_INIT,
        p.FLAG_RESPONSE,
        0,
        p.HEADER_SIZE + len(refusal),
    )
    machine.receive(answer.encode() + refusal, 0.01)
    assert not machine.finished and machine.next_event() is None
    assert machine.timed_out() == Failed(
        Failure.PROTOCOL, "the responder answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN"
    )
