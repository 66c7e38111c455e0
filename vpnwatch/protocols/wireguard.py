"""WireGuard's handshake from the initiator's side, without I/O.

The handshake is Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as section 5.4 of the WireGuard whitepaper
specifies it. A monitor plays the initiator: it sends handshake initiations, and counts the
endpoint as up only when a handshake response decrypts and authenticates, which proves that the
server holds its private key, knows ours, and (when one is set) shares our preshared key.

:class:`NoiseHandshake` builds and checks the messages; :class:`WireGuardInitiator` is the probe's
machine on the shared contract (:mod:`vpnwatch.protocols.machine`), with retransmission.
:class:`WireGuardTransport` carries IP packets over the session a handshake derived (transport
data messages, section 5.4.6), the data plane a tunnel test sends its echoes through. The caller
owns sockets and clocks; :class:`TimestampGuard` issues the TAI64N timestamps an initiation carries
from a wall clock the caller passes in.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import os
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vpnwatch.protocols.machine import Failed, LocalProtocolError, MachineBase, StageCompleted
from vpnwatch.result import Failure, LocalError, LocalReason

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

#: Message types: the first byte of every message, followed by three zero bytes. Read together as
#: one little-endian 32-bit word, as the reference implementations do, so that a packet with
#: non-zero reserved bytes is of no known type.
MESSAGE_INITIATION = 1
MESSAGE_RESPONSE = 2
MESSAGE_COOKIE_REPLY = 3
MESSAGE_TRANSPORT = 4

KEY_SIZE = 32
TAG_SIZE = 16
MAC_SIZE = 16
TIMESTAMP_SIZE = 12
COOKIE_NONCE_SIZE = 24

INITIATION_SIZE = 148
RESPONSE_SIZE = 92
COOKIE_REPLY_SIZE = 64
TRANSPORT_HEADER_SIZE = 16
KEEPALIVE_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE

#: A server drops an initiation from a peer that arrives within this many seconds of the last one
#: it accepted from that peer (its flood guard), so initiations of one key to one server must be
#: spaced further apart than this.
INITIATION_INTERVAL = 0.020
#: wireguard-go sends a new initiation when no response came within this many seconds, plus a
#: random jitter of up to a third of a second.
REKEY_TIMEOUT = 5.0
REKEY_TIMEOUT_JITTER = 0.333
#: How far back the wall clock may have stepped for an initiation to wait for it rather than fail.
MAX_CLOCK_WAIT = 0.1

# type, sender, ephemeral, encrypted static, encrypted timestamp; then mac1, mac2
_INITIATION = struct.Struct(f"<II{KEY_SIZE}s{KEY_SIZE + TAG_SIZE}s{TIMESTAMP_SIZE + TAG_SIZE}s")
# type, sender, receiver, ephemeral, encrypted nothing; then mac1, mac2
_RESPONSE = struct.Struct(f"<III{KEY_SIZE}s{TAG_SIZE}s")
# type, receiver, nonce, encrypted cookie
_COOKIE_REPLY = struct.Struct(f"<II{COOKIE_NONCE_SIZE}s{MAC_SIZE + TAG_SIZE}s")
# type, receiver, counter
_TRANSPORT_HEADER = struct.Struct("<IIQ")
_TYPE = struct.Struct("<I")

#: TAI64 label of the Unix epoch, as WireGuard writes it (2^62 + 10 seconds).
TAI64_UNIX_EPOCH = 0x400000000000000A
_TAI64N = struct.Struct(">QI")
_NS_PER_SECOND = 1_000_000_000


def blake2s_hash(*parts: bytes) -> bytes:
    """HASH: BLAKE2s-256 of the concatenated parts."""
    return hashlib.blake2s(b"".join(parts)).digest()


def keyed_mac(key: bytes, data: bytes) -> bytes:
    """MAC: keyed BLAKE2s-128; the digest size is a parameter, so not a truncated BLAKE2s-256."""
    return hashlib.blake2s(data, key=key, digest_size=MAC_SIZE).digest()


_BLAKE2S_BLOCK_SIZE = 64
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))
#: The counter byte that ends each HKDF expansion block, for KDF_1 to KDF_3.
_KDF_INDEXES = (b"\x01", b"\x02", b"\x03")


def _hmac(key: bytes, data: bytes) -> bytes:
    """HMAC-BLAKE2s (RFC 2104), written out.

    ``hmac.new`` drives BLAKE2s through its generic pure-Python path, several times slower than
    these two hash calls; a handshake computes 21 HMACs. Keys are chaining keys and KDF outputs,
    32 bytes, so they never need hashing down to a block.
    """
    block = key.ljust(_BLAKE2S_BLOCK_SIZE, b"\0")
    inner = hashlib.blake2s(block.translate(_INNER_PAD) + data).digest()
    return hashlib.blake2s(block.translate(_OUTER_PAD) + inner).digest()


def kdf(key: bytes, material: bytes, count: int) -> tuple[bytes, ...]:
    """KDF_n: HKDF with HMAC-BLAKE2s, returning ``count`` 32-byte outputs.

    The expansion's HMACs all take the extracted secret as key, so its pads are made once: a
    handshake runs 8 KDFs with 13 outputs, and this is the hottest Python of a probe.
    """
    if not 1 <= count <= len(_KDF_INDEXES):
        raise ValueError(f"WireGuard takes 1 to {len(_KDF_INDEXES)} KDF outputs, not {count}")
    block = _hmac(key, material).ljust(_BLAKE2S_BLOCK_SIZE, b"\0")
    inner_pad, outer_pad = block.translate(_INNER_PAD), block.translate(_OUTER_PAD)
    blake2s = hashlib.blake2s
    outputs: list[bytes] = []
    previous = b""
    for index in _KDF_INDEXES[:count]:
        previous = blake2s(outer_pad + blake2s(inner_pad + previous + index).digest()).digest()
        outputs.append(previous)
    return tuple(outputs)


_NONCE_ZERO = bytes(12)


def _nonce(counter: int) -> bytes:
    return _NONCE_ZERO if counter == 0 else bytes(4) + counter.to_bytes(8, "little")


def aead_seal(key: bytes, counter: int, plaintext: bytes, associated: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_nonce(counter), plaintext, associated)


def aead_open(key: bytes, counter: int, ciphertext: bytes, associated: bytes) -> bytes:
    """Decrypt and authenticate; raises :class:`cryptography.exceptions.InvalidTag`."""
    return ChaCha20Poly1305(key).decrypt(_nonce(counter), ciphertext, associated)


def public_key_of(private_key: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key."""
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def tai64n(unix_ns: int) -> bytes:
    """The 12-byte TAI64N label of a wall-clock time in nanoseconds since the Unix epoch."""
    seconds, nanoseconds = divmod(unix_ns, _NS_PER_SECOND)
    return _TAI64N.pack(TAI64_UNIX_EPOCH + seconds, nanoseconds)


class ClockBehindError(Exception):
    """The wall clock has not passed the last timestamp issued; retry after ``wait_ns``."""

    def __init__(self, wait_ns: int) -> None:
        super().__init__(f"the wall clock is {wait_ns} ns behind the last timestamp issued")
        self.wait_ns = wait_ns


class TimestampGuard:
    """Issues TAI64N timestamps that strictly increase and never lead the wall clock.

    A server silently drops an initiation whose timestamp is not greater than the last one it saw
    from that peer, so timestamps must never repeat or go back. One would be easy to force by
    adding a nanosecond, but a timestamp from the future is remembered by every server it reaches
    and silences the key (for this monitor after a restart, too) until the clock catches up; so when
    the clock has not moved past the last timestamp this raises :class:`ClockBehindError` and the
    caller waits. Share one guard per process: that makes the order hold across all keys.
    """

    def __init__(self, wall_clock_ns: Callable[[], int]) -> None:
        self._wall_clock_ns = wall_clock_ns
        self._last_ns = -1

    def issue(self) -> bytes:
        now_ns = self._wall_clock_ns()
        if now_ns <= self._last_ns:
            raise ClockBehindError(self._last_ns - now_ns + 1)
        self._last_ns = now_ns
        return tai64n(now_ns)


class Rejection(enum.StrEnum):
    """Why a datagram was not accepted.

    Only :attr:`AUTHENTICATION` is the server's own word: a reply to our initiation, carrying a
    valid mac1 (so made by someone who decrypted our static key), whose transcript does not
    authenticate, as happens with a wrong preshared key or an impostor holding another private key.
    Everything else may be a stray or forged packet and must not end a probe.
    """

    MALFORMED = "wrong type or length"
    UNEXPECTED = "not expected now"
    WRONG_INDEX = "index is not ours"
    BAD_MAC1 = "mac1 does not verify"
    BAD_COOKIE = "cookie does not decrypt"
    AUTHENTICATION = "reply fails authentication"


class Consumed:
    """Base of what :meth:`NoiseHandshake.consume` makes of one datagram."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ResponseAccepted(Consumed):
    """A response decrypted and authenticated; the transport keys are derived.

    ``local_index`` is the sender index of the initiation it answered: the server addresses its
    transport messages to it.
    """

    remote_index: int
    local_index: int
    sending_key: bytes = field(repr=False)
    receiving_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class CookieAccepted(Consumed):
    """The server is under load and sent a cookie: initiate again, which now carries mac2."""


@dataclass(frozen=True, slots=True)
class DatagramRejected(Consumed):
    """A datagram was not accepted, and why; the handshake's state did not change."""

    reason: Rejection


@dataclass(slots=True)
class _SymmetricState:
    """The chaining key and transcript hash that every Noise step folds material into."""

    chaining_key: bytes
    hash: bytes

    def copy(self) -> _SymmetricState:
        """A state to go on from, leaving this one as it is (cheaper than ``replace``)."""
        return _SymmetricState(self.chaining_key, self.hash)

    def mix_hash(self, data: bytes) -> None:
        self.hash = blake2s_hash(self.hash, data)

    def mix_key(self, material: bytes) -> None:
        (self.chaining_key,) = kdf(self.chaining_key, material, 1)

    def mix_key_for_cipher(self, material: bytes) -> bytes:
        self.chaining_key, key = kdf(self.chaining_key, material, 2)
        return key

    def encrypt_and_hash(self, key: bytes, plaintext: bytes) -> bytes:
        ciphertext = aead_seal(key, 0, plaintext, self.hash)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, key: bytes, ciphertext: bytes) -> bytes:
        plaintext = aead_open(key, 0, ciphertext, self.hash)
        self.mix_hash(ciphertext)
        return plaintext


@dataclass(slots=True)
class _PendingInitiation:
    """What answering the last initiation needs: its index, ephemeral key, Noise state and mac1."""

    sender_index: int
    ephemeral: X25519PrivateKey
    noise: _SymmetricState
    mac1: bytes


@dataclass(slots=True)
class _Session:
    remote_index: int
    sending_key: bytes
    next_counter: int = 0


@dataclass(frozen=True, slots=True)
class _StaticKeys:
    """What a handshake derives from the static keys alone: the same for every probe of a pair."""

    private: X25519PrivateKey
    public: bytes
    #: The peer's public key, loaded once: every initiation's first DH is with it.
    peer_public: X25519PublicKey
    preshared: bytes
    shared: bytes
    initiation_mac1: bytes
    response_mac1: bytes
    cookie: bytes
    initial: _SymmetricState


#: Pairs whose static work is kept: a fleet's worth, at about half a kilobyte each.
STATIC_KEYS_CACHE_SIZE = 65536


@functools.lru_cache(maxsize=STATIC_KEYS_CACHE_SIZE)
def _static_keys(private_key: bytes, peer_public_key: bytes, preshared_key: bytes) -> _StaticKeys:
    """Load the private key, compute the static-static DH, the mac1 and cookie keys and the
    initial Noise state once per pair: together a fifth of a probe's CPU. Raises ValueError for a
    low-order peer key, which no real server can hold."""
    private = X25519PrivateKey.from_private_bytes(private_key)
    public = private.public_key().public_bytes_raw()
    peer_public = X25519PublicKey.from_public_bytes(peer_public_key)
    chaining_key = blake2s_hash(CONSTRUCTION)
    return _StaticKeys(
        private=private,
        public=public,
        peer_public=peer_public,
        preshared=preshared_key,
        shared=private.exchange(peer_public),
        initiation_mac1=blake2s_hash(LABEL_MAC1, peer_public_key),
        response_mac1=blake2s_hash(LABEL_MAC1, public),
        cookie=blake2s_hash(LABEL_COOKIE, peer_public_key),
        initial=_SymmetricState(
            chaining_key, blake2s_hash(blake2s_hash(chaining_key, IDENTIFIER), peer_public_key)
        ),
    )


class NoiseHandshake:
    """The handshake's messages with one WireGuard peer, from the initiator's side.

    ``create_initiation`` returns an initiation, ``consume`` says what a datagram was, and after a
    :class:`ResponseAccepted` ``keepalive`` returns the empty transport message that lets the
    server confirm the session. Every initiation has its own ephemeral key and sender index, as
    wireguard-go's do, so a late response to an earlier one is ignored, not taken for an impostor.
    A :class:`CookieAccepted` is taken once; initiate again with a fresh timestamp.
    """

    def __init__(
        self, private_key: bytes, peer_public_key: bytes, preshared_key: bytes | None = None
    ) -> None:
        for name, key in (("private key", private_key), ("peer public key", peer_public_key)):
            if len(key) != KEY_SIZE:
                raise ValueError(f"the {name} must be {KEY_SIZE} bytes")
        if preshared_key is not None and len(preshared_key) != KEY_SIZE:
            raise ValueError(f"the preshared key must be {KEY_SIZE} bytes")
        keys = _static_keys(private_key, peer_public_key, preshared_key or bytes(KEY_SIZE))
        self._static = keys.private
        self.public_key = keys.public
        self._peer_public_key = keys.peer_public
        self._preshared_key = keys.preshared
        self._static_shared = keys.shared
        self._initiation_mac1_key = keys.initiation_mac1
        self._response_mac1_key = keys.response_mac1
        self._cookie_key = keys.cookie
        self._initial = keys.initial
        self._pending: _PendingInitiation | None = None
        self._cookie: bytes | None = None
        self._session: _Session | None = None

    def create_initiation(
        self, timestamp_tai64n: bytes, *, ephemeral_private: bytes, sender_index: int
    ) -> bytes:
        """An initiation carrying ``timestamp_tai64n``, with mac2 if a cookie is held."""
        if self._session is not None:
            raise LocalProtocolError("the handshake is already complete")
        if len(timestamp_tai64n) != TIMESTAMP_SIZE:
            raise ValueError(f"a TAI64N timestamp is {TIMESTAMP_SIZE} bytes")
        if not 0 <= sender_index < 2**32:
            raise ValueError("the sender index must fit in 32 bits")
        ephemeral = X25519PrivateKey.from_private_bytes(ephemeral_private)
        ephemeral_public = ephemeral.public_key().public_bytes_raw()
        noise = self._initial.copy()
        noise.mix_key(ephemeral_public)
        noise.mix_hash(ephemeral_public)
        key = noise.mix_key_for_cipher(ephemeral.exchange(self._peer_public_key))
        encrypted_static = noise.encrypt_and_hash(key, self.public_key)
        key = noise.mix_key_for_cipher(self._static_shared)
        encrypted_timestamp = noise.encrypt_and_hash(key, timestamp_tai64n)
        body = _INITIATION.pack(
            MESSAGE_INITIATION,
            sender_index,
            ephemeral_public,
            encrypted_static,
            encrypted_timestamp,
        )
        mac1 = keyed_mac(self._initiation_mac1_key, body)
        mac2 = bytes(MAC_SIZE) if self._cookie is None else keyed_mac(self._cookie, body + mac1)
        self._pending = _PendingInitiation(sender_index, ephemeral, noise, mac1)
        return body + mac1 + mac2

    def consume(self, datagram: bytes) -> Consumed:
        """Say what ``datagram`` was; only a verified response or cookie changes any state."""
        if len(datagram) < _TYPE.size:
            return DatagramRejected(Rejection.MALFORMED)
        (message_type,) = _TYPE.unpack_from(datagram)
        if message_type == MESSAGE_RESPONSE:
            return self._consume_response(datagram)
        if message_type == MESSAGE_COOKIE_REPLY:
            return self._consume_cookie_reply(datagram)
        if message_type in (MESSAGE_INITIATION, MESSAGE_TRANSPORT):
            return DatagramRejected(Rejection.UNEXPECTED)
        return DatagramRejected(Rejection.MALFORMED)

    @property
    def next_counter(self) -> int:
        """The counter the session's next transport message takes (after any keepalive)."""
        if self._session is None:
            raise LocalProtocolError("there is no session before the handshake completes")
        return self._session.next_counter

    def keepalive(self) -> bytes:
        """An empty transport message under the new session's sending key."""
        if self._session is None:
            raise LocalProtocolError("a keepalive needs a completed handshake")
        session = self._session
        counter = session.next_counter
        session.next_counter += 1
        header = _TRANSPORT_HEADER.pack(MESSAGE_TRANSPORT, session.remote_index, counter)
        return header + aead_seal(session.sending_key, counter, b"", b"")

    def _consume_response(self, datagram: bytes) -> Consumed:
        if len(datagram) != RESPONSE_SIZE:
            return DatagramRejected(Rejection.MALFORMED)
        if self._pending is None:  # nothing sent, or already answered
            return DatagramRejected(Rejection.UNEXPECTED)
        _, sender, receiver, ephemeral_public, encrypted_nothing = _RESPONSE.unpack_from(datagram)
        if receiver != self._pending.sender_index:
            return DatagramRejected(Rejection.WRONG_INDEX)
        mac1_end = _RESPONSE.size + MAC_SIZE
        expected_mac1 = keyed_mac(self._response_mac1_key, datagram[: _RESPONSE.size])
        if not hmac.compare_digest(expected_mac1, datagram[_RESPONSE.size : mac1_end]):
            return DatagramRejected(Rejection.BAD_MAC1)
        pending = self._pending
        noise = pending.noise.copy()
        noise.mix_key(ephemeral_public)
        noise.mix_hash(ephemeral_public)
        try:
            # exchange raises ValueError for a low-order key (an all-zero shared secret).
            peer_ephemeral = X25519PublicKey.from_public_bytes(ephemeral_public)
            noise.mix_key(pending.ephemeral.exchange(peer_ephemeral))
            noise.mix_key(self._static.exchange(peer_ephemeral))
            noise.chaining_key, tau, key = kdf(noise.chaining_key, self._preshared_key, 3)
            noise.mix_hash(tau)
            noise.decrypt_and_hash(key, encrypted_nothing)
        except (ValueError, InvalidTag):
            return DatagramRejected(Rejection.AUTHENTICATION)
        sending_key, receiving_key = kdf(noise.chaining_key, b"", 2)
        self._pending = None
        self._session = _Session(sender, sending_key)
        return ResponseAccepted(sender, pending.sender_index, sending_key, receiving_key)

    def _consume_cookie_reply(self, datagram: bytes) -> Consumed:
        if len(datagram) != COOKIE_REPLY_SIZE:
            return DatagramRejected(Rejection.MALFORMED)
        if self._pending is None or self._cookie is not None:
            return DatagramRejected(Rejection.UNEXPECTED)
        _, receiver, nonce, encrypted_cookie = _COOKIE_REPLY.unpack(datagram)
        if receiver != self._pending.sender_index:
            return DatagramRejected(Rejection.WRONG_INDEX)
        # Loaded here: only a server under load sends cookies, and libsodium's bindings would
        # cost every command that imports this module (`vpnwatch check`) a few milliseconds.
        from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt  # noqa: PLC0415
        from nacl.exceptions import CryptoError  # noqa: PLC0415

        try:
            cookie = crypto_aead_xchacha20poly1305_ietf_decrypt(
                encrypted_cookie, self._pending.mac1, nonce, self._cookie_key
            )
        except CryptoError:
            return DatagramRejected(Rejection.BAD_COOKIE)
        self._cookie = bytes(cookie)
        return CookieAccepted()


class WireGuardInitiator(MachineBase):
    """A probe's handshake with one WireGuard server, on the shared machine contract.

    It sends an initiation at :meth:`start` and, as wireguard-go does, a new one every
    :data:`REKEY_TIMEOUT` plus up to :data:`REKEY_TIMEOUT_JITTER` of jitter until a response
    verifies, so one lost datagram costs a retry, not the probe. A cookie reply is answered at once
    with an initiation carrying mac2. Only a reply that fails authentication ends the probe early;
    stray, forged and malformed datagrams are counted and ignored, and decide the failure only if
    time runs out (``protocol`` when the endpoint answered with something that is not WireGuard).

    ``timestamps`` issues TAI64N labels (a process-wide :class:`TimestampGuard`); ``random_bytes``
    draws every ephemeral key, sender index and jitter, so a test can replay a captured exchange.
    """

    stages: tuple[str, ...] = ("handshake",)

    def __init__(
        self,
        handshake: NoiseHandshake,
        *,
        timestamps: Callable[[], bytes],
        keepalive: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self.handshake = handshake
        self._timestamps = timestamps
        self._keepalive = keepalive
        self._random = random_bytes
        self._resend_at: float | None = None
        self.initiations = 0
        self.cookie_received = False
        self.session: ResponseAccepted | None = None
        self.ignored: Counter[Rejection] = Counter()

    def start(self, now: float) -> None:
        super().start(now)
        self._initiate(now)

    def timer(self) -> float | None:
        return None if self.finished else self._resend_at

    def handle_timer(self, now: float) -> None:
        if not self.finished and self._resend_at is not None and now >= self._resend_at:
            self._initiate(now)

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        match self.handshake.consume(data):
            case ResponseAccepted() as accepted:
                self.session = accepted
                self._emit(StageCompleted("handshake"))
                if self._keepalive:
                    self._send(self.handshake.keepalive())
                retried = " after a cookie reply" if self.cookie_received else ""
                self._complete(f"handshake verified{retried}")
            case CookieAccepted():
                self.cookie_received = True
                self._initiate(now)
            case DatagramRejected(reason=Rejection.AUTHENTICATION):
                self._fail(
                    Failure.AUTH,
                    "the server's reply fails authentication: a wrong preshared key, "
                    "or a server without the private key of this public key",
                )
            case DatagramRejected(reason=reason):
                self.ignored[reason] += 1

    def timed_out(self) -> Failed:
        """``protocol`` if the endpoint answered with anything but WireGuard, else ``timeout``."""
        sent = f"no valid reply to {self.initiations} initiation{'s' * (self.initiations != 1)}"
        if not self.ignored:
            return Failed(Failure.TIMEOUT, sent)
        total = sum(self.ignored.values())
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.ignored.most_common())
        detail = f"{sent}; ignored {total} datagram{'s' * (total != 1)} ({reasons})"
        if self.ignored[Rejection.MALFORMED]:
            return Failed(Failure.PROTOCOL, detail)
        return Failed(Failure.TIMEOUT, detail)

    def _initiate(self, now: float) -> None:
        """Send a new initiation, or wait out a wall clock that has not passed the last one."""
        try:
            timestamp = self._timestamps()
        except ClockBehindError as behind:
            wait = behind.wait_ns / _NS_PER_SECOND
            if wait > MAX_CLOCK_WAIT:
                raise LocalError(
                    LocalReason.CLOCK,
                    f"the system clock went back {wait:.3f} s; the server drops initiations "
                    "until the clock passes the last one sent",
                ) from None
            self._resend_at = now + wait
            return
        self._send(
            self.handshake.create_initiation(
                timestamp,
                ephemeral_private=self._random(KEY_SIZE),
                sender_index=int.from_bytes(self._random(4), "little"),
            )
        )
        self.initiations += 1
        jitter = int.from_bytes(self._random(2), "little") / 0xFFFF * REKEY_TIMEOUT_JITTER
        self._resend_at = now + REKEY_TIMEOUT + jitter


#: Transport data plaintext is padded with zeros to a multiple of this (whitepaper 5.4.6).
PADDING_MULTIPLE = 16


class WireGuardTransport:
    """Transport data messages of one session: the :class:`~vpnwatch.protocols.tunnel.Tunnel` of
    a WireGuard tunnel test.

    ``seal`` pads an IP packet to a multiple of 16 bytes and encrypts it under the sending key with
    the next counter as nonce, addressed to the server's index; ``open`` takes a transport message
    to our index whose counter was not seen before and which decrypts and authenticates under the
    receiving key, and returns the IP packet without its padding. A keepalive (empty plaintext),
    a replayed counter, a wrong index or a failed tag yields nothing, counted in ``rejected``.
    """

    def __init__(self, session: ResponseAccepted, next_counter: int) -> None:
        self._remote_index = session.remote_index
        self._local_index = session.local_index
        self._sending = ChaCha20Poly1305(session.sending_key)
        self._receiving = ChaCha20Poly1305(session.receiving_key)
        self._counter = next_counter
        self._seen: set[int] = set()
        self.rejected: Counter[Rejection] = Counter()

    def seal(self, packet: bytes) -> list[bytes]:
        counter = self._counter
        self._counter += 1
        padded = packet + bytes(-len(packet) % PADDING_MULTIPLE)
        header = _TRANSPORT_HEADER.pack(MESSAGE_TRANSPORT, self._remote_index, counter)
        return [header + self._sending.encrypt(_nonce(counter), padded, None)]

    def open(self, data: bytes) -> list[bytes]:
        if len(data) < KEEPALIVE_SIZE or (len(data) - KEEPALIVE_SIZE) % PADDING_MULTIPLE:
            self.rejected[Rejection.MALFORMED] += 1
            return []
        message_type, receiver, counter = _TRANSPORT_HEADER.unpack_from(data)
        if message_type != MESSAGE_TRANSPORT:
            self.rejected[Rejection.UNEXPECTED] += 1
            return []
        if receiver != self._local_index:
            self.rejected[Rejection.WRONG_INDEX] += 1
            return []
        if counter in self._seen:
            self.rejected[Rejection.UNEXPECTED] += 1
            return []
        try:
            plaintext = self._receiving.decrypt(_nonce(counter), data[TRANSPORT_HEADER_SIZE:], None)
        except InvalidTag:
            self.rejected[Rejection.AUTHENTICATION] += 1
            return []
        self._seen.add(counter)
        packet = _unpad(plaintext)
        return [packet] if packet else []

    def flush(self) -> list[bytes]:
        return []


def _unpad(plaintext: bytes) -> bytes:
    """The IP packet at the start of ``plaintext``, by its own length field; b"" if none."""
    if not plaintext:
        return b""
    version = plaintext[0] >> 4
    if version == 4 and len(plaintext) >= 4:
        length = int.from_bytes(plaintext[2:4], "big")
    elif version == 6 and len(plaintext) >= 6:
        length = 40 + int.from_bytes(plaintext[4:6], "big")
    else:
        return b""
    return plaintext[:length] if length <= len(plaintext) else b""
