"""The client side of the obfs4 handshake, sans I/O: a request out, the server's hello in.

Request:  X' | P_C | M_C | MAC_C, where X' is the representative of the client's ephemeral key,
P_C random padding, M_C = HMAC-SHA256-128(B | NODEID, X') and MAC_C the same HMAC over everything
before it followed by E, the decimal number of hours since the UNIX epoch.

Hello:    Y' | AUTH | P_S | M_S | MAC_S, then frames. The client finds M_S = HMAC(B | NODEID, Y')
by searching, checks MAC_S over everything before it and E, completes ntor with Y and accepts
only when AUTH matches: AUTH is the one value an impostor without the bridge's private key cannot
produce.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable

from vpnwatch.protocols.obfs4.elligator import (
    REPRESENTATIVE_LENGTH,
    ElligatorKeypair,
    generate_keypair,
    representative_to_public_key,
)
from vpnwatch.protocols.obfs4.errors import MalformedHandshake, ServerAuthFailed
from vpnwatch.protocols.obfs4.events import NEED_DATA, HelloAccepted, NeedData
from vpnwatch.protocols.obfs4.ntor import (
    AUTH_LENGTH,
    NODE_ID_LENGTH,
    DegenerateKeyError,
    client_derive,
    session_key_material,
)

PUBLIC_KEY_LENGTH = 32
MARK_LENGTH = 16
MAC_LENGTH = 16
MAX_HANDSHAKE_LENGTH = 8192
CLIENT_HANDSHAKE_LENGTH = REPRESENTATIVE_LENGTH + MARK_LENGTH + MAC_LENGTH
SERVER_HANDSHAKE_LENGTH = REPRESENTATIVE_LENGTH + AUTH_LENGTH + MARK_LENGTH + MAC_LENGTH
#: The specification's minimum. Its formula (server hello plus a 45-byte seed frame, less the
#: request) gives 77, which the reference code uses and servers accept; 85 satisfies both.
CLIENT_MIN_PAD_LENGTH = 85
CLIENT_MAX_PAD_LENGTH = MAX_HANDSHAKE_LENGTH - CLIENT_HANDSHAKE_LENGTH
#: Servers check E - 1, E and E + 1 against clock skew; a hello is accepted under the same rule.
EPOCH_HOUR_SKEW = (0, -1, 1)


def epoch_hour(now: float) -> int:
    """Hours since the UNIX epoch at wall-clock time ``now``."""
    return int(now // 3600)


def hmac_sha256_128(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()[:16]


class ClientHandshake:
    """One client handshake with the bridge whose node id and identity key are given.

    ``now`` is the wall-clock time in seconds since the epoch (it only picks the epoch hour);
    ``random_bytes``, ``keypair`` and ``pad_length`` exist so tests can fix what is random.
    """

    def __init__(
        self,
        node_id: bytes,
        identity_key: bytes,
        *,
        now: float,
        random_bytes: Callable[[int], bytes] = os.urandom,
        keypair: ElligatorKeypair | None = None,
        pad_length: int | None = None,
    ) -> None:
        if len(node_id) != NODE_ID_LENGTH:
            raise ValueError(f"a node id is {NODE_ID_LENGTH} bytes")
        if len(identity_key) != PUBLIC_KEY_LENGTH:
            raise ValueError(f"an identity key is {PUBLIC_KEY_LENGTH} bytes")
        if pad_length is None:
            span = CLIENT_MAX_PAD_LENGTH - CLIENT_MIN_PAD_LENGTH + 1
            pad_length = CLIENT_MIN_PAD_LENGTH + secrets.randbelow(span)
        if not CLIENT_MIN_PAD_LENGTH <= pad_length <= CLIENT_MAX_PAD_LENGTH:
            raise ValueError(
                f"padding must be {CLIENT_MIN_PAD_LENGTH}..{CLIENT_MAX_PAD_LENGTH} bytes"
            )
        self._node_id = node_id
        self._identity_key = identity_key
        self._mac_key = identity_key + node_id
        self._keypair = keypair or generate_keypair(random_bytes)
        self._epoch_hour = epoch_hour(now)
        self._request = self._build_request(random_bytes(pad_length))
        self._buffer = bytearray()
        self._completed = False

    def _build_request(self, padding: bytes) -> bytes:
        representative = self._keypair.representative
        body = representative + padding + hmac_sha256_128(self._mac_key, representative)
        return body + hmac_sha256_128(self._mac_key, body, str(self._epoch_hour).encode())

    def data_to_send(self) -> bytes:
        """The request: send it once, as soon as the connection is up."""
        return self._request

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> HelloAccepted | NeedData:
        """Try to complete the handshake with what has arrived; raises Obfs4Error subclasses."""
        if self._completed:
            raise RuntimeError("the handshake has already completed")
        mark_at = self._find_mark()
        if mark_at is None:
            if len(self._buffer) >= MAX_HANDSHAKE_LENGTH:
                raise MalformedHandshake(
                    f"no server mark in the first {MAX_HANDSHAKE_LENGTH} bytes of the hello"
                )
            return NEED_DATA
        mac_at = mark_at + MARK_LENGTH
        hello = bytes(self._buffer[: mac_at + MAC_LENGTH])
        self._check_mac(hello[:mac_at], hello[mac_at:])
        key_material = self._complete_ntor(hello)
        self._completed = True
        return HelloAccepted(key_material, bytes(self._buffer[len(hello) :]))

    def _find_mark(self) -> int | None:
        """Where M_S starts, once it and the MAC after it are both in the buffer."""
        if len(self._buffer) < SERVER_HANDSHAKE_LENGTH:
            return None
        mark = hmac_sha256_128(self._mac_key, bytes(self._buffer[:REPRESENTATIVE_LENGTH]))
        start = REPRESENTATIVE_LENGTH + AUTH_LENGTH
        end = min(len(self._buffer), MAX_HANDSHAKE_LENGTH)
        found = self._buffer.find(mark, start, end)
        if found == -1 or found + MARK_LENGTH + MAC_LENGTH > end:
            return None
        return found

    def _check_mac(self, covered: bytes, received: bytes) -> None:
        for skew in EPOCH_HOUR_SKEW:
            hour = str(self._epoch_hour + skew).encode()
            if hmac.compare_digest(hmac_sha256_128(self._mac_key, covered, hour), received):
                return
        raise MalformedHandshake("the server hello's MAC does not verify")

    def _complete_ntor(self, hello: bytes) -> bytes:
        server_key = representative_to_public_key(hello[:REPRESENTATIVE_LENGTH])
        try:
            key_seed, auth = client_derive(
                self._keypair.private_key,
                self._keypair.public_key,
                server_key,
                identity_key=self._identity_key,
                node_id=self._node_id,
            )
        except DegenerateKeyError as exc:
            raise MalformedHandshake(f"server hello: {exc}") from None
        received = hello[REPRESENTATIVE_LENGTH : REPRESENTATIVE_LENGTH + AUTH_LENGTH]
        if not hmac.compare_digest(auth, received):
            raise ServerAuthFailed("the server's ntor AUTH tag is wrong: it lacks the bridge's key")
        return session_key_material(key_seed)
