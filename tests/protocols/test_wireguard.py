"""The WireGuard initiator by bytes alone, against a responder written apart from it.

The responder below shares no code with vpnwatch.protocols.wireguard: it builds every primitive
from hashlib, hmac, cryptography and PyNaCl itself, so that a mistake on one side shows up as a
failed handshake instead of cancelling out. :class:`NoiseHandshake` is tested message by message;
:class:`WireGuardInitiator`, the probe's machine, on the shared contract with ``now`` moved by
hand (nothing here sleeps). Known answers from the real wireguard-go are replayed in
test_wireguard_vectors.py, and the probe runs against it in tests/integration/test_wireguard_lab.py.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from vpnwatch.protocols import ip
from vpnwatch.protocols.machine import (
    Completed,
    Event,
    Failed,
    LocalProtocolError,
    StageCompleted,
)
from vpnwatch.protocols.wireguard import (
    COOKIE_REPLY_SIZE,
    INITIATION_SIZE,
    KEEPALIVE_SIZE,
    REKEY_TIMEOUT,
    REKEY_TIMEOUT_JITTER,
    RESPONSE_SIZE,
    ClockBehindError,
    CookieAccepted,
    DatagramRejected,
    NoiseHandshake,
    Rejection,
    ResponseAccepted,
    TimestampGuard,
    WireGuardInitiator,
    WireGuardTransport,
    tai64n,
)
from vpnwatch.result import Failure, LocalError, LocalReason

TUNNEL = ipaddress.IPv4Address("198.19.3.2"), ipaddress.IPv4Address("198.19.3.1")

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


def initiate(
    handshake: NoiseHandshake, stamp: bytes = STAMP, *, sender_index: int | None = None
) -> bytes:
    """An initiation with a fresh ephemeral key and (unless given) a random sender index."""
    if sender_index is None:
        sender_index = int.from_bytes(os.urandom(4), "little")
    return handshake.create_initiation(
        stamp, ephemeral_private=os.urandom(32), sender_index=sender_index
    )


def pair(
    initiator_psk: bytes | None = None, responder_psk: bytes | None = None
) -> tuple[NoiseHandshake, Responder]:
    responder = Responder(responder_psk)
    return NoiseHandshake(client_key(), responder.public, initiator_psk), responder


def complete(handshake: NoiseHandshake, response: bytes) -> ResponseAccepted:
    accepted = handshake.consume(response)
    assert isinstance(accepted, ResponseAccepted), accepted
    return accepted


def answered(handshake: NoiseHandshake, responder: Responder) -> ResponseAccepted:
    """Run a whole handshake: initiation, the responder's response, its acceptance."""
    return complete(
        handshake, responder.create_response(responder.consume_initiation(initiate(handshake)))
    )


def rejected(reason: Rejection) -> DatagramRejected:
    return DatagramRejected(reason)


# --- the initiation ---------------------------------------------------------------------------------


def test_initiation_layout() -> None:
    ephemeral = os.urandom(32)
    handshake = NoiseHandshake(client_key(), Responder().public)
    msg = handshake.create_initiation(STAMP, ephemeral_private=ephemeral, sender_index=0x01020304)
    assert len(msg) == INITIATION_SIZE == 148
    assert msg[:4] == b"\x01\x00\x00\x00"
    assert msg[4:8] == b"\x04\x03\x02\x01"  # sender index, little-endian
    assert msg[8:40] == _raw(X25519PrivateKey.from_private_bytes(ephemeral))  # the given one
    assert msg[132:148] == bytes(16)  # no cookie held: mac2 is zero


def test_the_same_inputs_give_the_same_initiation() -> None:
    """Nothing random is drawn inside: what a capture injects, a replay reproduces."""
    private, ephemeral, server = client_key(), os.urandom(32), Responder().public
    made = [
        NoiseHandshake(private, server).create_initiation(
            STAMP, ephemeral_private=ephemeral, sender_index=7
        )
        for _ in range(2)
    ]
    assert made[0] == made[1]


def test_mac1_is_keyed_blake2s_128_over_everything_before_it() -> None:
    responder = Responder()
    msg = initiate(NoiseHandshake(client_key(), responder.public))
    key = hashlib.blake2s(b"mac1----" + responder.public).digest()
    assert msg[116:132] == hashlib.blake2s(msg[:116], key=key, digest_size=16).digest()
    # BLAKE2s-128 is not BLAKE2s-256 cut short: the digest size is a parameter of the hash.
    assert msg[116:132] != hashlib.blake2s(msg[:116], key=key).digest()[:16]


def test_responder_decrypts_our_static_key_and_timestamp() -> None:
    handshake, responder = pair()
    consumed = responder.consume_initiation(initiate(handshake, sender_index=0xCAFE))
    assert consumed.initiator_static == handshake.public_key
    assert consumed.timestamp == STAMP
    assert consumed.sender == 0xCAFE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"private_key": bytes(31)}, "private key"),
        ({"peer_public_key": bytes(33)}, "peer public key"),
        ({"preshared_key": bytes(16)}, "preshared key"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "private_key": client_key(),
        "peer_public_key": Responder().public,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        NoiseHandshake(**arguments)  # type: ignore[arg-type]


def test_low_order_peer_key_is_refused() -> None:
    """The all-zero point gives an all-zero shared secret: no server can hold such a key."""
    with pytest.raises(ValueError):
        NoiseHandshake(client_key(), bytes(32))


def test_sender_index_must_fit_in_32_bits() -> None:
    handshake, _ = pair()
    with pytest.raises(ValueError, match="32 bits"):
        initiate(handshake, sender_index=2**32)


def test_timestamp_must_be_twelve_bytes() -> None:
    handshake, _ = pair()
    with pytest.raises(ValueError, match="12 bytes"):
        initiate(handshake, STAMP[:11])


# --- the response -----------------------------------------------------------------------------------


def test_handshake_derives_the_same_transport_keys_on_both_sides() -> None:
    handshake, responder = pair()
    response = responder.create_response(responder.consume_initiation(initiate(handshake)))
    assert len(response) == RESPONSE_SIZE == 92
    accepted = complete(handshake, response)
    assert accepted.remote_index == responder.index
    assert accepted.sending_key == responder.receiving_key
    assert accepted.receiving_key == responder.sending_key
    assert accepted.sending_key != accepted.receiving_key
    assert repr(accepted) == (  # no keys
        f"ResponseAccepted(remote_index={responder.index}, local_index={accepted.local_index})"
    )


def test_transport_messages_carry_ip_packets_both_ways() -> None:
    """The tunnel test's data plane: our sealed packets open under the responder's receiving
    key with counters in order; its messages to our index open once, and nothing else does."""
    handshake, responder = pair()
    accepted = answered(handshake, responder)
    transport = WireGuardTransport(accepted, handshake.next_counter)
    packet = ip.echo_request(*TUNNEL, identifier=1, sequence=2, payload=b"ping")
    for counter in range(2):
        (sealed,) = transport.seal(packet)
        assert len(sealed) % 16 == 0 and sealed[:4] == b"\x04\x00\x00\x00"
        assert int.from_bytes(sealed[8:16], "little") == counter
        assert int.from_bytes(sealed[4:8], "little") == responder.index
        nonce = bytes(4) + counter.to_bytes(8, "little")
        plain = ChaCha20Poly1305(responder.receiving_key).decrypt(nonce, sealed[16:], None)
        assert plain.rstrip(b"\0").startswith(packet[:20]) and plain[: len(packet)] == packet

    def from_server(counter: int, plaintext: bytes, index: int = accepted.local_index) -> bytes:
        nonce = bytes(4) + counter.to_bytes(8, "little")
        padded = plaintext + bytes(-len(plaintext) % 16)
        header = struct.pack("<IIQ", 4, index, counter)
        return header + ChaCha20Poly1305(responder.sending_key).encrypt(nonce, padded, None)

    reply = ip.answer(packet)
    assert reply is not None
    assert transport.open(from_server(0, reply)) == [reply]
    assert transport.open(from_server(0, reply)) == []  # a replay
    assert transport.open(from_server(1, b"")) == []  # a keepalive
    assert transport.open(from_server(2, reply, index=accepted.local_index ^ 1)) == []
    damaged = bytearray(from_server(3, reply))
    damaged[-1] ^= 1
    assert transport.open(bytes(damaged)) == []
    assert transport.open(from_server(4, reply)) == [reply]  # later counters still open
    assert sorted(transport.rejected.values()) == [1, 1, 1]


def test_keepalive_is_an_empty_transport_message_the_responder_opens() -> None:
    handshake, responder = pair()
    answered(handshake, responder)
    first, second = handshake.keepalive(), handshake.keepalive()
    assert len(first) == KEEPALIVE_SIZE == 32
    assert responder.open_transport(first) == (responder.index, 0, b"")
    assert responder.open_transport(second) == (responder.index, 1, b"")


def test_preshared_key_on_both_sides_completes() -> None:
    psk = os.urandom(32)
    handshake, responder = pair(psk, psk)
    assert answered(handshake, responder).sending_key == responder.receiving_key


@pytest.mark.parametrize(
    ("initiator_psk", "responder_psk"),
    [(None, os.urandom(32)), (os.urandom(32), None), (os.urandom(32), os.urandom(32))],
    ids=["server-only", "client-only", "different"],
)
def test_preshared_key_mismatch_fails_authentication(
    initiator_psk: bytes | None, responder_psk: bytes | None
) -> None:
    handshake, responder = pair(initiator_psk, responder_psk)
    response = responder.create_response(responder.consume_initiation(initiate(handshake)))
    assert handshake.consume(response) == rejected(Rejection.AUTHENTICATION)


def test_impostor_that_knows_our_key_fails_authentication() -> None:
    """A server with another private key cannot follow the transcript, so its reply fails."""
    handshake, _ = pair()
    impostor = Responder()
    consumed = impostor.consume_initiation(initiate(handshake), impersonate=handshake.public_key)
    response = impostor.create_response(consumed)  # right index, valid mac1, wrong static key
    assert handshake.consume(response) == rejected(Rejection.AUTHENTICATION)


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
    handshake, responder = pair()
    response = responder.create_response(responder.consume_initiation(initiate(handshake)))
    flips = [(start, bit) for bit in range(8)] + [
        (offset, offset % 8) for offset in range(start, end)
    ]
    for offset, bit in flips:
        tampered = bytearray(response)
        tampered[offset] ^= 1 << bit
        assert handshake.consume(bytes(tampered)) == rejected(reason), (offset, bit)
    complete(handshake, response)  # the genuine reply still completes: nothing was consumed


@pytest.mark.parametrize(
    "offset", [12, 43, 44, 59], ids=["ephemeral", "ephemeral-end", "tag", "tag-end"]
)
def test_tampered_response_with_recomputed_mac1_fails_authentication(offset: int) -> None:
    """Someone who knows our public key can forge mac1, but not the Noise transcript."""
    handshake, responder = pair()
    consumed = responder.consume_initiation(initiate(handshake))
    response = bytearray(responder.create_response(consumed))
    response[offset] ^= 0x01
    response[60:76] = _mac(_hash(b"mac1----", handshake.public_key), bytes(response[:60]))
    assert handshake.consume(bytes(response)) == rejected(Rejection.AUTHENTICATION)


def test_mac2_of_a_response_is_not_checked() -> None:
    """We never send the server a cookie, so a response's mac2 carries nothing to verify."""
    handshake, responder = pair()
    response = bytearray(
        responder.create_response(responder.consume_initiation(initiate(handshake)))
    )
    response[-1] ^= 0xFF
    complete(handshake, bytes(response))


def test_response_to_another_index_is_ignored() -> None:
    handshake, responder = pair()
    consumed = responder.consume_initiation(initiate(handshake))
    stray = responder.create_response(consumed, receiver=(consumed.sender + 1) % 2**32)
    assert handshake.consume(stray) == rejected(Rejection.WRONG_INDEX)
    complete(handshake, responder.create_response(consumed))


def test_response_to_an_earlier_initiation_is_ignored_not_taken_for_an_impostor() -> None:
    handshake, responder = pair()
    first = responder.consume_initiation(initiate(handshake))
    latest = responder.consume_initiation(initiate(handshake, LATER_STAMP))
    assert handshake.consume(responder.create_response(first)) == rejected(Rejection.WRONG_INDEX)
    complete(handshake, responder.create_response(latest))


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
    handshake, _ = pair()
    initiate(handshake)
    assert handshake.consume(datagram) == rejected(Rejection.MALFORMED)


def test_messages_we_do_not_await_are_unexpected() -> None:
    handshake, responder = pair()
    early = Responder()
    other = NoiseHandshake(client_key(), early.public)
    early_response = early.create_response(early.consume_initiation(initiate(other)))
    assert handshake.consume(early_response) == rejected(Rejection.UNEXPECTED)  # nothing sent
    initiation = initiate(handshake)
    assert handshake.consume(initiation) == rejected(Rejection.UNEXPECTED)  # our own echo
    response = responder.create_response(responder.consume_initiation(initiation))
    complete(handshake, response)
    assert handshake.consume(response) == rejected(Rejection.UNEXPECTED)  # a replayed response
    assert handshake.consume(handshake.keepalive()) == rejected(Rejection.UNEXPECTED)


def test_out_of_order_calls_are_local_errors() -> None:
    handshake, responder = pair()
    with pytest.raises(LocalProtocolError):
        handshake.keepalive()
    answered(handshake, responder)
    with pytest.raises(LocalProtocolError):
        initiate(handshake, LATER_STAMP)


# --- the cookie reply -------------------------------------------------------------------------------


def test_cookie_reply_then_retry_carries_mac2_and_completes() -> None:
    handshake, responder = pair()
    first = initiate(handshake)
    cookie = os.urandom(16)
    reply = responder.cookie_reply(first, cookie)
    assert len(reply) == COOKIE_REPLY_SIZE == 64
    assert handshake.consume(reply) == CookieAccepted()
    retry = initiate(handshake, LATER_STAMP)
    assert retry[132:148] == hashlib.blake2s(retry[:132], key=cookie, digest_size=16).digest()
    consumed = responder.consume_initiation(retry)  # also checks mac1 of the retry
    assert consumed.timestamp == LATER_STAMP
    complete(handshake, responder.create_response(consumed))


def test_only_one_cookie_is_accepted() -> None:
    handshake, responder = pair()
    reply = responder.cookie_reply(initiate(handshake), os.urandom(16))
    assert handshake.consume(reply) == CookieAccepted()
    again = responder.cookie_reply(initiate(handshake, LATER_STAMP), os.urandom(16))
    assert handshake.consume(again) == rejected(Rejection.UNEXPECTED)


def test_cookie_bound_to_another_initiation_does_not_decrypt() -> None:
    handshake, responder = pair()
    first = initiate(handshake, sender_index=9)
    second = initiate(handshake, LATER_STAMP, sender_index=9)  # the cookie's AD is its mac1
    stale = responder.cookie_reply(first, os.urandom(16))
    assert stale[4:8] == second[4:8]
    assert handshake.consume(stale) == rejected(Rejection.BAD_COOKIE)


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
    handshake, responder = pair()
    reply = bytearray(responder.cookie_reply(initiate(handshake), os.urandom(16)))
    reply[offset] ^= 0x80
    assert handshake.consume(bytes(reply)) == rejected(reason)
    assert initiate(handshake, LATER_STAMP)[132:148] == bytes(16)  # no cookie was taken


def test_cookie_before_any_initiation_is_unexpected() -> None:
    handshake, responder = pair()
    other = NoiseHandshake(client_key(), responder.public)
    reply = responder.cookie_reply(initiate(other), os.urandom(16))
    assert handshake.consume(reply) == rejected(Rejection.UNEXPECTED)


# --- the machine: retransmission, cookies, failures, on the shared contract ---------------------

T0 = 1000.0  # the driver's monotonic clock when the machine starts


class Draws:
    """A ``random_bytes`` that keeps every draw, so a test knows each key and index it made.

    ``jitter`` fixes the 2-byte draws (the retransmission jitter); all others are fresh.
    """

    def __init__(self, jitter: bytes | None = None) -> None:
        self.jitter = jitter
        self.taken: list[bytes] = []

    def __call__(self, length: int) -> bytes:
        draw = self.jitter if length == 2 and self.jitter is not None else os.urandom(length)
        self.taken.append(draw)
        return draw


class WallClock:
    """A wall clock in nanoseconds that only a test moves."""

    def __init__(self, ns: int = 1_700_000_000 * 10**9) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


@dataclass
class Probe:
    machine: WireGuardInitiator
    responder: Responder
    draws: Draws
    clock: WallClock

    def sent(self, now: float) -> list[bytes]:
        return self.machine.data_to_send(now)

    def events(self) -> list[Event]:
        out = []
        while (event := self.machine.next_event()) is not None:
            out.append(event)
        return out

    def receive(self, datagram: bytes, now: float) -> list[Event]:
        self.machine.receive(datagram, now)
        return self.events()

    def tick(self, seconds: float = 0.001) -> None:
        """Let the wall clock move on, as it does between two initiations."""
        self.clock.ns += round(seconds * 1e9)


def probe(
    *,
    psk: bytes | None = None,
    responder_psk: bytes | None = None,
    keepalive: bool = True,
    jitter: bytes | None = None,
    timestamps: Callable[[], bytes] | None = None,
    clock: WallClock | None = None,
) -> Probe:
    responder = Responder(responder_psk)
    draws = Draws(jitter)
    clock = clock or WallClock()
    machine = WireGuardInitiator(
        NoiseHandshake(client_key(), responder.public, psk),
        timestamps=timestamps or TimestampGuard(clock).issue,
        keepalive=keepalive,
        random_bytes=draws,
    )
    return Probe(machine, responder, draws, clock)


def started(**kwargs: Any) -> tuple[Probe, bytes]:
    """A started machine and the one initiation it sent."""
    run = probe(**kwargs)
    run.machine.start(T0)
    [initiation] = run.sent(T0)
    return run, initiation


def test_start_sends_one_initiation_made_of_the_injected_draws() -> None:
    run, initiation = started()
    assert run.sent(T0) == [] and run.events() == []
    ephemeral, index, _jitter = run.draws.taken
    consumed = run.responder.consume_initiation(initiation)
    assert consumed.ephemeral == _raw(X25519PrivateKey.from_private_bytes(ephemeral))
    assert consumed.sender == int.from_bytes(index, "little")
    assert consumed.timestamp == tai64n(run.clock.ns)
    assert run.machine.initiations == 1 and not run.machine.finished


@pytest.mark.parametrize(
    ("jitter", "delay"),
    [(b"\x00\x00", REKEY_TIMEOUT), (b"\xff\xff", REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER)],
    ids=["least", "most"],
)
def test_no_answer_retransmits_after_rekey_timeout_plus_jitter(jitter: bytes, delay: float) -> None:
    run, _ = started(jitter=jitter)
    assert run.machine.timer() == pytest.approx(T0 + delay)
    assert 5.0 <= delay <= 5.333


def test_random_jitter_stays_within_a_third_of_a_second() -> None:
    timers = []
    for _ in range(64):
        run, _ = started()
        timer = run.machine.timer()
        assert timer is not None
        timers.append(timer - T0)
    assert all(5.0 <= delay <= 5.333 for delay in timers)
    assert len(set(timers)) > 1  # drawn, not fixed


def test_retransmission_is_a_new_initiation_with_new_index_and_ephemeral() -> None:
    run, first = started()
    due = run.machine.timer()
    assert due is not None
    run.machine.handle_timer(due - 0.001)  # early: nothing is due yet
    assert run.sent(due - 0.001) == []
    run.tick()
    run.machine.handle_timer(due)
    [second] = run.sent(due)
    one, two = (run.responder.consume_initiation(msg) for msg in (first, second))
    assert two.sender != one.sender
    assert two.ephemeral != one.ephemeral
    assert two.timestamp > one.timestamp
    assert run.machine.initiations == 2 and run.events() == []
    again = run.machine.timer()
    assert again is not None and 5.0 <= again - due <= 5.333


def test_late_answer_to_the_first_is_ignored_and_the_latest_completes() -> None:
    run, first = started()
    due = run.machine.timer()
    assert due is not None
    run.tick()
    run.machine.handle_timer(due)
    [second] = run.sent(due)
    one, two = (run.responder.consume_initiation(msg) for msg in (first, second))
    late = run.responder.create_response(one)
    assert run.receive(late, due + 0.1) == []  # not an impostor: an answer to another index
    assert run.machine.ignored == Counter({Rejection.WRONG_INDEX: 1})
    assert not run.machine.finished
    response = run.responder.create_response(two)
    assert run.receive(response, due + 0.2) == [
        StageCompleted("handshake"),
        Completed("handshake verified"),
    ]
    [keepalive] = run.sent(due + 0.2)
    assert run.responder.open_transport(keepalive) == (run.responder.index, 0, b"")
    assert run.machine.finished and run.machine.timer() is None
    assert run.machine.session is not None
    assert run.machine.session.remote_index == run.responder.index
    # Finished: whatever follows is ignored, and nothing more is sent.
    assert run.receive(response, due + 0.3) == [] and run.sent(due + 0.3) == []
    run.machine.handle_timer(due + 10)
    assert run.sent(due + 10) == []


def test_without_keepalive_nothing_follows_the_handshake() -> None:
    run, initiation = started(keepalive=False)
    response = run.responder.create_response(run.responder.consume_initiation(initiation))
    assert run.receive(response, T0 + 0.01)[-1] == Completed("handshake verified")
    assert run.sent(T0 + 0.01) == []


def test_cookie_reply_is_answered_at_once_with_mac2() -> None:
    run, first = started()
    cookie = os.urandom(16)
    run.tick()
    assert run.receive(run.responder.cookie_reply(first, cookie), T0 + 0.01) == []
    [retry] = run.sent(T0 + 0.01)
    assert retry[132:148] == hashlib.blake2s(retry[:132], key=cookie, digest_size=16).digest()
    assert run.machine.cookie_received and run.machine.initiations == 2
    timer = run.machine.timer()
    assert timer is not None and 5.0 <= timer - (T0 + 0.01) <= 5.333  # re-armed from the retry
    consumed = run.responder.consume_initiation(retry)
    assert consumed.sender != run.responder.consume_initiation(first).sender
    assert run.receive(run.responder.create_response(consumed), T0 + 0.02) == [
        StageCompleted("handshake"),
        Completed("handshake verified after a cookie reply"),
    ]


def test_reply_that_fails_authentication_fails_the_probe() -> None:
    run, initiation = started(responder_psk=os.urandom(32))
    response = run.responder.create_response(run.responder.consume_initiation(initiation))
    [failed] = run.receive(response, T0 + 0.01)
    assert isinstance(failed, Failed) and failed.failure is Failure.AUTH
    assert "preshared key" in failed.detail
    assert run.machine.finished and run.machine.timer() is None
    assert run.sent(T0 + 0.01) == []


def test_forged_datagrams_never_end_the_probe() -> None:
    run, initiation = started()
    consumed = run.responder.consume_initiation(initiation)
    stray = run.responder.create_response(consumed, receiver=(consumed.sender + 1) % 2**32)
    for datagram in (b"\xff" * 92, stray, initiation, os.urandom(64)):
        assert run.receive(datagram, T0 + 0.01) == []
    assert not run.machine.finished
    assert run.receive(run.responder.create_response(consumed), T0 + 0.02)[-1] == Completed(
        "handshake verified"
    )


@pytest.mark.parametrize(
    ("datagrams", "failure", "detail"),
    [
        ([], Failure.TIMEOUT, "no valid reply to 1 initiation"),
        (
            [b"\xff" * 92, b"\x01"],
            Failure.PROTOCOL,
            "no valid reply to 1 initiation; ignored 2 datagrams (2 wrong type or length)",
        ),
        (
            [bytes([2, 0, 0, 0]) + bytes(88)],
            Failure.TIMEOUT,
            "no valid reply to 1 initiation; ignored 1 datagram (1 index is not ours)",
        ),
    ],
    ids=["silence", "garbage", "stray"],
)
def test_timed_out_blames_protocol_only_when_garbage_came_back(
    datagrams: list[bytes], failure: Failure, detail: str
) -> None:
    run, _ = started()
    for datagram in datagrams:
        run.receive(datagram, T0 + 0.01)
    assert run.machine.timed_out() == Failed(failure, detail)


def test_timed_out_counts_every_initiation() -> None:
    run, _ = started()
    due = run.machine.timer()
    assert due is not None
    run.tick()
    run.machine.handle_timer(due)
    assert run.machine.timed_out() == Failed(Failure.TIMEOUT, "no valid reply to 2 initiations")


def test_a_clock_slightly_behind_is_waited_out() -> None:
    """Another probe issued a timestamp 50 ms ahead of this clock: wait, do not send an old one."""
    clock = WallClock()
    guard = TimestampGuard(clock)
    guard.issue()
    clock.ns -= 50_000_000
    run = probe(timestamps=guard.issue, clock=clock)
    run.machine.start(T0)
    assert run.sent(T0) == [] and run.events() == []
    timer = run.machine.timer()
    assert timer is not None and timer == pytest.approx(T0 + 0.050000001)
    clock.ns += 50_000_001
    run.machine.handle_timer(timer)
    [initiation] = run.sent(timer)
    assert run.responder.consume_initiation(initiation).timestamp == tai64n(clock.ns)


def test_a_clock_that_went_far_back_is_a_local_error() -> None:
    clock = WallClock()
    guard = TimestampGuard(clock)
    guard.issue()
    clock.ns -= 2 * 10**9
    run = probe(timestamps=guard.issue, clock=clock)
    with pytest.raises(LocalError) as error:
        run.machine.start(T0)
    assert error.value.reason is LocalReason.CLOCK
    assert "went back 2.000 s" in error.value.detail
    assert run.sent(T0) == []


def test_starting_twice_is_a_local_protocol_error() -> None:
    run, _ = started()
    with pytest.raises(LocalProtocolError):
        run.machine.start(T0)


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
