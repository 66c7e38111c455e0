"""The WireGuard initiator by bytes alone, against a responder written apart from it.

The responder below shares no code with vpnwatch.protocols.wireguard: it builds every primitive
from hashlib, hmac, cryptography and PyNaCl itself, so that a mistake on one side shows up as a
failed handshake instead of cancelling out. Interoperability with the real wireguard-go is proven
in tests/integration/test_wireguard_lab.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from vpnwatch.protocols.wireguard import (
    COOKIE_REPLY_SIZE,
    INITIATION_SIZE,
    KEEPALIVE_SIZE,
    RESPONSE_SIZE,
    ClockBehindError,
    CookieReceived,
    DatagramRejected,
    HandshakeCompleted,
    LocalProtocolError,
    Rejection,
    TimestampGuard,
    WireGuardInitiator,
    tai64n,
)

# --- an independent responder -------------------------------------------------------------------


def _hash(*parts: bytes) -> bytes:
    return hashlib.blake2s(b"".join(parts)).digest()


def _mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


def _kdf(key: bytes, data: bytes, n: int) -> list[bytes]:
    prk = hmac.new(key, data, hashlib.blake2s).digest()
    out = [hmac.new(prk, b"\x01", hashlib.blake2s).digest()]
    while len(out) < n:
        out.append(hmac.new(prk, out[-1] + bytes([len(out) + 1]), hashlib.blake2s).digest())
    return out


def _aead(key: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(key)


ZERO_NONCE = bytes(12)


def _raw(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    return private.exchange(X25519PublicKey.from_public_bytes(public))


@dataclass
class Consumed:
    sender: int
    initiator_static: bytes
    timestamp: bytes
    ephemeral: bytes
    chaining_key: bytes
    hash: bytes


class Responder:
    """The server's side of one handshake, for tests only."""

    def __init__(self, preshared_key: bytes | None = None) -> None:
        self.private = X25519PrivateKey.generate()
        self.public = _raw(self.private)
        self.psk = preshared_key or bytes(32)
        self.index = 0x0A0B0C0D
        self.sending_key = b""
        self.receiving_key = b""

    def consume_initiation(self, msg: bytes, *, impersonate: bytes | None = None) -> Consumed:
        """Check and decrypt an initiation to us.

        With ``impersonate`` (the initiator's public key, which an impostor may know) follow the
        transcript with our own key without decrypting, as a server with the wrong key would.
        """
        assert len(msg) == 148 and msg[:4] == b"\x01\x00\x00\x00"
        if impersonate is None:
            assert _mac(_hash(b"mac1----", self.public), msg[:116]) == msg[116:132]
        (sender,) = struct.unpack_from("<I", msg, 4)
        ephemeral, static, stamp = msg[8:40], msg[40:88], msg[88:116]
        ck = _hash(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")
        h = _hash(_hash(ck, b"WireGuard v1 zx2c4 Jason@zx2c4.com"), self.public)
        (ck,) = _kdf(ck, ephemeral, 1)
        h = _hash(h, ephemeral)
        ck, key = _kdf(ck, _dh(self.private, ephemeral), 2)
        initiator_static = impersonate or _aead(key).decrypt(ZERO_NONCE, static, h)
        h = _hash(h, static)
        ck, key = _kdf(ck, _dh(self.private, initiator_static), 2)
        timestamp = b"" if impersonate else _aead(key).decrypt(ZERO_NONCE, stamp, h)
        h = _hash(h, stamp)
        return Consumed(sender, initiator_static, timestamp, ephemeral, ck, h)

    def create_response(self, consumed: Consumed, *, receiver: int | None = None) -> bytes:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = _raw(ephemeral)
        (ck,) = _kdf(consumed.chaining_key, ephemeral_public, 1)
        h = _hash(consumed.hash, ephemeral_public)
        (ck,) = _kdf(ck, _dh(ephemeral, consumed.ephemeral), 1)
        (ck,) = _kdf(ck, _dh(ephemeral, consumed.initiator_static), 1)
        ck, tau, key = _kdf(ck, self.psk, 3)
        h = _hash(h, tau)
        empty = _aead(key).encrypt(ZERO_NONCE, b"", h)
        self.receiving_key, self.sending_key = _kdf(ck, b"", 2)
        receiver = consumed.sender if receiver is None else receiver
        body = struct.pack("<III", 2, self.index, receiver) + ephemeral_public + empty
        mac1 = _mac(_hash(b"mac1----", consumed.initiator_static), body)
        return body + mac1 + bytes(16)

    def cookie_reply(self, initiation: bytes, cookie: bytes) -> bytes:
        (sender,) = struct.unpack_from("<I", initiation, 4)
        nonce = os.urandom(24)
        sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
            cookie, initiation[116:132], nonce, _hash(b"cookie--", self.public)
        )
        return struct.pack("<II", 3, sender) + nonce + sealed

    def open_transport(self, msg: bytes) -> tuple[int, int, bytes]:
        kind, receiver, counter = struct.unpack_from("<IIQ", msg)
        assert kind == 4
        nonce = bytes(4) + counter.to_bytes(8, "little")
        return receiver, counter, _aead(self.receiving_key).decrypt(nonce, msg[16:], b"")


# --- fixtures -------------------------------------------------------------------------------------

STAMP = tai64n(1_700_000_000_123_456_789)
LATER_STAMP = tai64n(1_700_000_000_223_456_789)


def client_key() -> bytes:
    return os.urandom(32)


def pair(
    initiator_psk: bytes | None = None, responder_psk: bytes | None = None
) -> tuple[WireGuardInitiator, Responder]:
    responder = Responder(responder_psk)
    initiator = WireGuardInitiator(client_key(), responder.public, initiator_psk)
    return initiator, responder


def complete(initiator: WireGuardInitiator, response: bytes) -> HandshakeCompleted:
    event = initiator.receive(response)
    assert isinstance(event, HandshakeCompleted), event
    return event


def rejected(reason: Rejection) -> DatagramRejected:
    return DatagramRejected(reason)


# --- the initiation ---------------------------------------------------------------------------------


def test_initiation_layout() -> None:
    initiator = WireGuardInitiator(client_key(), Responder().public, sender_index=0x01020304)
    msg = initiator.initiate(STAMP)
    assert len(msg) == INITIATION_SIZE == 148
    assert msg[:4] == b"\x01\x00\x00\x00"
    assert msg[4:8] == b"\x04\x03\x02\x01"  # sender index, little-endian
    assert msg[132:148] == bytes(16)  # no cookie held: mac2 is zero
    again = initiator.initiate(LATER_STAMP)
    assert again[8:40] != msg[8:40]  # a fresh ephemeral key for every initiation


def test_mac1_is_keyed_blake2s_128_over_everything_before_it() -> None:
    responder = Responder()
    msg = WireGuardInitiator(client_key(), responder.public).initiate(STAMP)
    key = hashlib.blake2s(b"mac1----" + responder.public).digest()
    assert msg[116:132] == hashlib.blake2s(msg[:116], key=key, digest_size=16).digest()
    # BLAKE2s-128 is not BLAKE2s-256 cut short: the digest size is a parameter of the hash.
    assert msg[116:132] != hashlib.blake2s(msg[:116], key=key).digest()[:16]


def test_responder_decrypts_our_static_key_and_timestamp() -> None:
    initiator, responder = pair()
    consumed = responder.consume_initiation(initiator.initiate(STAMP))
    assert consumed.initiator_static == initiator.public_key
    assert consumed.timestamp == STAMP
    assert consumed.sender == initiator.sender_index


def test_sender_index_is_random_unless_given() -> None:
    server = Responder().public
    indices = {WireGuardInitiator(client_key(), server).sender_index for _ in range(8)}
    assert len(indices) > 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"private_key": bytes(31)}, "private key"),
        ({"peer_public_key": bytes(33)}, "peer public key"),
        ({"preshared_key": bytes(16)}, "preshared key"),
        ({"sender_index": 2**32}, "32 bits"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "private_key": client_key(),
        "peer_public_key": Responder().public,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        WireGuardInitiator(**arguments)  # type: ignore[arg-type]


def test_timestamp_must_be_twelve_bytes() -> None:
    initiator, _ = pair()
    with pytest.raises(ValueError, match="12 bytes"):
        initiator.initiate(STAMP[:11])


# --- the response -----------------------------------------------------------------------------------


def test_handshake_derives_the_same_transport_keys_on_both_sides() -> None:
    initiator, responder = pair()
    response = responder.create_response(responder.consume_initiation(initiator.initiate(STAMP)))
    assert len(response) == RESPONSE_SIZE == 92
    event = complete(initiator, response)
    assert event.remote_index == responder.index
    assert event.sending_key == responder.receiving_key
    assert event.receiving_key == responder.sending_key
    assert event.sending_key != event.receiving_key
    assert repr(event) == f"HandshakeCompleted(remote_index={responder.index})"  # no keys


def test_keepalive_is_an_empty_transport_message_the_responder_opens() -> None:
    initiator, responder = pair()
    complete(
        initiator,
        responder.create_response(responder.consume_initiation(initiator.initiate(STAMP))),
    )
    first, second = initiator.keepalive(), initiator.keepalive()
    assert len(first) == KEEPALIVE_SIZE == 32
    assert responder.open_transport(first) == (responder.index, 0, b"")
    assert responder.open_transport(second) == (responder.index, 1, b"")


def test_preshared_key_on_both_sides_completes() -> None:
    psk = os.urandom(32)
    initiator, responder = pair(psk, psk)
    event = complete(
        initiator,
        responder.create_response(responder.consume_initiation(initiator.initiate(STAMP))),
    )
    assert event.sending_key == responder.receiving_key


@pytest.mark.parametrize(
    ("initiator_psk", "responder_psk"),
    [(None, os.urandom(32)), (os.urandom(32), None), (os.urandom(32), os.urandom(32))],
    ids=["server-only", "client-only", "different"],
)
def test_preshared_key_mismatch_fails_authentication(
    initiator_psk: bytes | None, responder_psk: bytes | None
) -> None:
    initiator, responder = pair(initiator_psk, responder_psk)
    response = responder.create_response(responder.consume_initiation(initiator.initiate(STAMP)))
    assert initiator.receive(response) == rejected(Rejection.AUTHENTICATION)


def test_impostor_that_knows_our_key_fails_authentication() -> None:
    """A server with another private key cannot follow the transcript, so its reply fails."""
    initiator, _ = pair()
    impostor = Responder()
    consumed = impostor.consume_initiation(
        initiator.initiate(STAMP), impersonate=initiator.public_key
    )
    response = impostor.create_response(consumed)  # right index, valid mac1, wrong static key
    assert initiator.receive(response) == rejected(Rejection.AUTHENTICATION)


# Each field of a response, and what a flipped bit in it must cause.
RESPONSE_FIELDS = [
    ("type", 0, 1, Rejection.MALFORMED),
    ("reserved", 1, 4, Rejection.MALFORMED),
    ("sender", 4, 8, Rejection.BAD_MAC1),
    ("receiver", 8, 12, Rejection.WRONG_INDEX),
    ("ephemeral", 12, 44, Rejection.BAD_MAC1),
    ("empty", 44, 60, Rejection.BAD_MAC1),
    ("mac1", 60, 76, Rejection.BAD_MAC1),
]


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [fields[1:] for fields in RESPONSE_FIELDS],
    ids=[fields[0] for fields in RESPONSE_FIELDS],
)
def test_tampered_response_is_rejected_and_changes_nothing(
    start: int, end: int, reason: Rejection
) -> None:
    initiator, responder = pair()
    response = responder.create_response(responder.consume_initiation(initiator.initiate(STAMP)))
    flips = [(start, bit) for bit in range(8)] + [
        (offset, offset % 8) for offset in range(start, end)
    ]
    for offset, bit in flips:
        tampered = bytearray(response)
        tampered[offset] ^= 1 << bit
        assert initiator.receive(bytes(tampered)) == rejected(reason), (offset, bit)
    complete(initiator, response)  # the genuine reply still completes: nothing was consumed


@pytest.mark.parametrize(
    "offset", [12, 43, 44, 59], ids=["ephemeral", "ephemeral-end", "tag", "tag-end"]
)
def test_tampered_response_with_recomputed_mac1_fails_authentication(offset: int) -> None:
    """Someone who knows our public key can forge mac1, but not the Noise transcript."""
    initiator, responder = pair()
    consumed = responder.consume_initiation(initiator.initiate(STAMP))
    response = bytearray(responder.create_response(consumed))
    response[offset] ^= 0x01
    response[60:76] = _mac(_hash(b"mac1----", initiator.public_key), bytes(response[:60]))
    assert initiator.receive(bytes(response)) == rejected(Rejection.AUTHENTICATION)


def test_mac2_of_a_response_is_not_checked() -> None:
    """We never send the server a cookie, so a response's mac2 carries nothing to verify."""
    initiator, responder = pair()
    response = bytearray(
        responder.create_response(responder.consume_initiation(initiator.initiate(STAMP)))
    )
    response[-1] ^= 0xFF
    complete(initiator, bytes(response))


def test_response_to_another_index_is_ignored() -> None:
    initiator, responder = pair()
    consumed = responder.consume_initiation(initiator.initiate(STAMP))
    stray = responder.create_response(consumed, receiver=(initiator.sender_index + 1) % 2**32)
    assert initiator.receive(stray) == rejected(Rejection.WRONG_INDEX)
    complete(initiator, responder.create_response(consumed))


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\x02\x00\x00",
        bytes([2, 0, 0, 0]) + bytes(87),
        bytes([2, 0, 0, 0]) + bytes(89),
        bytes([3, 0, 0, 0]) + bytes(59),
        bytes([5, 0, 0, 0]) + bytes(88),
        b"\xff" * 92,
    ],
    ids=["empty", "short", "response-91", "response-93", "cookie-63", "type-5", "garbage"],
)
def test_wrong_type_or_length_is_malformed(datagram: bytes) -> None:
    initiator, _ = pair()
    initiator.initiate(STAMP)
    assert initiator.receive(datagram) == rejected(Rejection.MALFORMED)


def test_messages_we_do_not_await_are_unexpected() -> None:
    initiator, responder = pair()
    early = Responder()
    other = WireGuardInitiator(client_key(), early.public)
    early_response = early.create_response(early.consume_initiation(other.initiate(STAMP)))
    assert initiator.receive(early_response) == rejected(Rejection.UNEXPECTED)  # nothing sent yet
    initiation = initiator.initiate(STAMP)
    assert initiator.receive(initiation) == rejected(Rejection.UNEXPECTED)  # our own echo
    response = responder.create_response(responder.consume_initiation(initiation))
    complete(initiator, response)
    assert initiator.receive(response) == rejected(Rejection.UNEXPECTED)  # a replayed response
    assert initiator.receive(initiator.keepalive()) == rejected(Rejection.UNEXPECTED)


def test_out_of_order_calls_are_local_errors() -> None:
    initiator, responder = pair()
    with pytest.raises(LocalProtocolError):
        initiator.keepalive()
    complete(
        initiator,
        responder.create_response(responder.consume_initiation(initiator.initiate(STAMP))),
    )
    with pytest.raises(LocalProtocolError):
        initiator.initiate(LATER_STAMP)


# --- the cookie reply -------------------------------------------------------------------------------


def test_cookie_reply_then_retry_carries_mac2_and_completes() -> None:
    initiator, responder = pair()
    first = initiator.initiate(STAMP)
    cookie = os.urandom(16)
    reply = responder.cookie_reply(first, cookie)
    assert len(reply) == COOKIE_REPLY_SIZE == 64
    assert initiator.receive(reply) == CookieReceived()
    retry = initiator.initiate(LATER_STAMP)
    assert retry[132:148] == hashlib.blake2s(retry[:132], key=cookie, digest_size=16).digest()
    consumed = responder.consume_initiation(retry)  # also checks mac1 of the retry
    assert consumed.timestamp == LATER_STAMP
    complete(initiator, responder.create_response(consumed))


def test_only_one_cookie_is_accepted() -> None:
    initiator, responder = pair()
    assert initiator.receive(responder.cookie_reply(initiator.initiate(STAMP), os.urandom(16))) == (
        CookieReceived()
    )
    retry = initiator.initiate(LATER_STAMP)
    again = responder.cookie_reply(retry, os.urandom(16))
    assert initiator.receive(again) == rejected(Rejection.UNEXPECTED)


def test_cookie_bound_to_another_initiation_does_not_decrypt() -> None:
    initiator, responder = pair()
    first = initiator.initiate(STAMP)
    second = initiator.initiate(LATER_STAMP)  # the cookie's associated data is this one's mac1
    stale = responder.cookie_reply(first, os.urandom(16))
    assert stale[4:8] == second[4:8]
    assert initiator.receive(stale) == rejected(Rejection.BAD_COOKIE)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (0, Rejection.MALFORMED),
        (4, Rejection.WRONG_INDEX),
        (8, Rejection.BAD_COOKIE),
        (40, Rejection.BAD_COOKIE),
        (63, Rejection.BAD_COOKIE),
    ],
)
def test_tampered_cookie_reply_is_rejected(offset: int, reason: Rejection) -> None:
    initiator, responder = pair()
    reply = bytearray(responder.cookie_reply(initiator.initiate(STAMP), os.urandom(16)))
    reply[offset] ^= 0x80
    assert initiator.receive(bytes(reply)) == rejected(reason)
    assert initiator.initiate(LATER_STAMP)[132:148] == bytes(16)  # no cookie was taken


def test_cookie_before_any_initiation_is_unexpected() -> None:
    initiator, responder = pair()
    other = WireGuardInitiator(client_key(), responder.public, sender_index=initiator.sender_index)
    reply = responder.cookie_reply(other.initiate(STAMP), os.urandom(16))
    assert initiator.receive(reply) == rejected(Rejection.UNEXPECTED)


# --- TAI64N -----------------------------------------------------------------------------------------


def test_tai64n_layout() -> None:
    assert tai64n(0) == bytes.fromhex("400000000000000a00000000")
    assert tai64n(1_500_000_001) == bytes.fromhex("400000000000000b1dcd6501")


@given(st.lists(st.integers(min_value=0, max_value=2**62), min_size=1, max_size=40))
def test_timestamps_strictly_increase_and_never_lead_the_clock(readings: list[int]) -> None:
    clock = iter(readings)
    current = 0

    def wall_clock() -> int:
        nonlocal current
        current = next(clock)
        return current

    guard = TimestampGuard(wall_clock)
    issued: list[bytes] = []
    for _ in readings:
        try:
            stamp = guard.issue()
        except ClockBehindError as behind:
            assert issued and behind.wait_ns > 0
            assert tai64n(current + behind.wait_ns) > issued[-1]
            continue
        assert stamp == tai64n(current)  # exactly the clock: never ahead of it
        assert not issued or stamp > issued[-1]
        issued.append(stamp)


def test_timestamp_guard_waits_out_a_clock_that_went_back() -> None:
    readings = iter([5_000, 5_000, 4_000, 5_001])
    guard = TimestampGuard(lambda: next(readings))
    assert guard.issue() == tai64n(5_000)
    with pytest.raises(ClockBehindError) as same:
        guard.issue()
    assert same.value.wait_ns == 1
    with pytest.raises(ClockBehindError) as back:
        guard.issue()
    assert back.value.wait_ns == 1_001
    assert guard.issue() == tai64n(5_001)
