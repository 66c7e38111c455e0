"""Known answers from the real wireguard-go (tests/vectors/wireguard.json), replayed offline.

Given the inputs a capture recorded, the initiator must send byte for byte what went to the real
server, and accept the real server's answers: its response, and (in the ``cookie`` capture) the
cookie reply it sent under load. At capture time the server recorded each handshake, which it
does only once our keepalive decrypts, so the same keepalive here proves the same transport keys.
What the real server sent is checked with hashlib, cryptography and PyNaCl alone, not with
vpnwatch's code, and tampered with to prove the initiator refuses what it did not send.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

from tests.machines import drain
from tests.vectors.wireguard import WireGuardCapture, captures
from vpnwatch.protocols.machine import Completed, Event, Failed, StageCompleted
from vpnwatch.protocols.wireguard import Rejection, WireGuardInitiator
from vpnwatch.result import Failure

NAMES = ["handshake", "preshared-key", "cookie"]


def public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


def replay(
    capture: WireGuardCapture, initiator: WireGuardInitiator | None = None
) -> tuple[list[bytes], list[Event]]:
    """Run an initiator through the capture: what it sent, and every event it reported."""
    machine = initiator or capture.initiator()
    now = 0.0
    machine.start(now)
    sent = machine.data_to_send(now)
    events: list[Event] = []
    for datagram in capture.sent("server"):
        now += 0.001
        machine.receive(datagram, now)
        sent += machine.data_to_send(now)
        events += drain(machine)
    return sent, events


@pytest.mark.parametrize("name", NAMES)
def test_the_same_inputs_send_the_same_bytes_and_the_real_answers_complete(name: str) -> None:
    capture = captures()[name]
    sent, events = replay(capture)
    assert sent == capture.sent("client")  # initiations and the keepalive, byte for byte
    retried = " after a cookie reply" if name == "cookie" else ""
    assert events == [StageCompleted("handshake"), Completed(f"handshake verified{retried}")]


@pytest.mark.parametrize("name", NAMES)
def test_each_initiation_is_made_of_the_recorded_inputs(name: str) -> None:
    capture = captures()[name]
    assert public(capture.server_private) == capture.server_public
    mac1_key = hashlib.blake2s(b"mac1----" + capture.server_public).digest()
    initiations = [data for data in capture.sent("client") if data[0] == 1]
    assert len(capture.draws) == 3 * len(initiations)  # ephemeral, index, jitter for each
    for number, initiation in enumerate(initiations):
        ephemeral, index, _jitter = capture.draws[3 * number : 3 * number + 3]
        assert initiation[4:8] == index
        assert initiation[8:40] == public(ephemeral)
        assert initiation[116:132] == mac(mac1_key, initiation[:116])


def test_the_real_cookie_reply_decrypts_and_the_retry_carries_its_mac2() -> None:
    capture = captures()["cookie"]
    first, retry, _keepalive = capture.sent("client")
    reply, _response = capture.sent("server")
    assert reply[:4] == b"\x03\x00\x00\x00" and reply[4:8] == first[4:8]
    cookie = crypto_aead_xchacha20poly1305_ietf_decrypt(
        reply[32:64],
        first[116:132],  # bound to the mac1 of the initiation it answers
        reply[8:32],
        hashlib.blake2s(b"cookie--" + capture.server_public).digest(),
    )
    assert first[132:148] == bytes(16)
    assert retry[132:148] == mac(cookie, retry[:132])
    assert retry[4:8] != first[4:8] and retry[8:40] != first[8:40]  # a new index and key


@pytest.mark.parametrize(
    ("name", "preshared_key"),
    [("preshared-key", None), ("preshared-key", os.urandom(32)), ("handshake", os.urandom(32))],
    ids=["missing", "wrong", "server-has-none"],
)
def test_a_preshared_key_the_server_does_not_share_fails_authentication(
    name: str, preshared_key: bytes | None
) -> None:
    """The key enters only the response's half of the transcript: the same initiation goes out,
    and the real server's answer fails authentication."""
    capture = dataclasses.replace(captures()[name], preshared_key=preshared_key)
    sent, events = replay(capture)
    assert sent == capture.sent("client")[:1]
    [failed] = events
    assert isinstance(failed, Failed) and failed.failure is Failure.AUTH


def _tampered_response(offset: int, *, remac: bool) -> WireGuardCapture:
    capture = captures()["handshake"]
    response = bytearray(capture.sent("server")[0])
    response[offset] ^= 0x01
    if remac:  # as anyone who knows our public key can
        mac1_key = hashlib.blake2s(b"mac1----" + public(capture.client_private)).digest()
        response[60:76] = mac(mac1_key, bytes(response[:60]))
    first, _, keepalive = capture.transcript
    return dataclasses.replace(capture, transcript=(first, ("server", bytes(response)), keepalive))


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(8, Rejection.WRONG_INDEX), (4, Rejection.BAD_MAC1), (20, Rejection.BAD_MAC1)],
    ids=["receiver", "sender", "ephemeral"],
)
def test_the_real_response_tampered_is_ignored(offset: int, reason: Rejection) -> None:
    capture = _tampered_response(offset, remac=False)
    initiator = capture.initiator()
    sent, events = replay(capture, initiator)
    assert events == [] and not initiator.finished
    assert initiator.ignored == {reason: 1}
    assert sent == capture.sent("client")[:1]


@pytest.mark.parametrize("offset", [12, 44, 59], ids=["ephemeral", "tag", "tag-end"])
def test_the_real_response_tampered_with_a_valid_mac1_fails_authentication(offset: int) -> None:
    _, events = replay(_tampered_response(offset, remac=True))
    [failed] = events
    assert isinstance(failed, Failed) and failed.failure is Failure.AUTH


def test_the_response_answers_the_recorded_index() -> None:
    """The server's response names our sender index as its receiver, as the format says."""
    capture = captures()["handshake"]
    [initiation, _] = capture.sent("client")
    [response] = capture.sent("server")
    kind, _sender, receiver = struct.unpack_from("<III", response)
    assert (kind, receiver.to_bytes(4, "little")) == (2, initiation[4:8])
