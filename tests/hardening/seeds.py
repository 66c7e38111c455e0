"""Valid messages of every protocol, for the fuzzers to damage.

Each seed is checked to be valid by the machine that will parse it, so a mutation starts from a
message that reaches the deepest code, not from one rejected at its first byte.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from tests.vectors.obfs4 import Obfs4Capture, captures
from vpnwatch.protocols.obfs4.framing import FrameEncoder, PacketType
from vpnwatch.protocols.openvpn.keymethod import SERVER_KEY_SOURCE_SIZE
from vpnwatch.protocols.openvpn.packets import ControlPacket, Opcode, frame_tcp
from vpnwatch.protocols.openvpn.wrappers import STATIC_KEY_SIZE, NoWrap, TlsAuth, TlsCrypt, Wrapper
from vpnwatch.protocols.wireguard import (
    CONSTRUCTION,
    IDENTIFIER,
    LABEL_COOKIE,
    LABEL_MAC1,
    MESSAGE_RESPONSE,
    aead_seal,
    blake2s_hash,
    kdf,
    keyed_mac,
)

# -- WireGuard ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireGuardPeers:
    """An initiator's keys and a server that answers it, so responses can be made at will."""

    client_private: bytes
    server_private: X25519PrivateKey

    @classmethod
    def generate(cls) -> WireGuardPeers:
        return cls(os.urandom(32), X25519PrivateKey.generate())

    @property
    def server_public(self) -> bytes:
        return self.server_private.public_key().public_bytes_raw()

    def response(self, initiation: bytes) -> bytes:
        """The server's valid response to ``initiation`` (Noise IKpsk2 with a zero PSK)."""
        sender, ephemeral = struct.unpack_from("<I", initiation, 4)[0], initiation[8:40]
        server = self.server_private
        ck = blake2s_hash(CONSTRUCTION)
        h = blake2s_hash(blake2s_hash(ck, IDENTIFIER), self.server_public)
        (ck,) = kdf(ck, ephemeral, 1)
        h = blake2s_hash(h, ephemeral)
        ck, _ = kdf(ck, _dh(server, ephemeral), 2)
        h = blake2s_hash(h, initiation[40:88])
        client_public = _public(self.client_private)
        ck, _ = kdf(ck, _dh(server, client_public), 2)
        h = blake2s_hash(h, initiation[88:116])
        reply = X25519PrivateKey.generate()
        reply_public = reply.public_key().public_bytes_raw()
        (ck,) = kdf(ck, reply_public, 1)
        h = blake2s_hash(h, reply_public)
        (ck,) = kdf(ck, _dh(reply, ephemeral), 1)
        (ck,) = kdf(ck, _dh(reply, client_public), 1)
        ck, tau, key = kdf(ck, bytes(32), 3)
        h = blake2s_hash(h, tau)
        body = struct.pack("<III", MESSAGE_RESPONSE, 7, sender) + reply_public
        body += aead_seal(key, 0, b"", h)
        return body + keyed_mac(blake2s_hash(LABEL_MAC1, client_public), body) + bytes(16)

    def cookie_reply(self, initiation: bytes) -> bytes:
        nonce = os.urandom(24)
        sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
            os.urandom(16),
            initiation[116:132],
            nonce,
            blake2s_hash(LABEL_COOKIE, self.server_public),
        )
        return struct.pack("<II", 3, struct.unpack_from("<I", initiation, 4)[0]) + nonce + sealed


def _public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    return private.exchange(X25519PublicKey.from_public_bytes(public))


# -- OpenVPN --------------------------------------------------------------------------------------

SERVER_SESSION = b"S" * 8
CLIENT_SESSION = b"C" * 8
STATIC_KEY = bytes(range(256))[:STATIC_KEY_SIZE]


def openvpn_wrappers() -> dict[str, Wrapper]:
    """One of each wrapper, all keyed alike: what the server sends with, the client opens."""
    return {
        "none": NoWrap(),
        "tls-auth": TlsAuth(STATIC_KEY, 1, "SHA256"),
        "tls-crypt": TlsCrypt(STATIC_KEY),
    }


def openvpn_server_wrappers() -> dict[str, Wrapper]:
    """The server's side of :func:`openvpn_wrappers`: the opposite key direction.

    tls-crypt has no direction setting (clients always use 1); a client wrapper whose key has its
    two halves swapped sends with the slots a server uses.
    """
    half = STATIC_KEY_SIZE // 2
    return {
        "none": NoWrap(),
        "tls-auth": TlsAuth(STATIC_KEY, 0, "SHA256"),
        "tls-crypt": TlsCrypt(STATIC_KEY[half:] + STATIC_KEY[:half]),
    }


def openvpn_packets() -> list[ControlPacket]:
    """A server's side of a handshake: reset, TLS records, ACKs."""
    return [
        ControlPacket(Opcode.CONTROL_HARD_RESET_SERVER_V2, SERVER_SESSION, (0,), CLIENT_SESSION, 0),
        ControlPacket(Opcode.CONTROL_V1, SERVER_SESSION, (), None, 1, b"\x16\x03\x03" + bytes(90)),
        ControlPacket(Opcode.CONTROL_V1, SERVER_SESSION, (1, 2, 3), CLIENT_SESSION, 2, b"x" * 1100),
        ControlPacket(Opcode.ACK_V1, SERVER_SESSION, (4, 5), CLIENT_SESSION),
    ]


@cache
def openvpn_wire(kind: str) -> tuple[bytes, ...]:
    """The packets of :func:`openvpn_packets` as ``kind``'s server puts them on the wire."""
    wrapper = openvpn_server_wrappers()[kind]
    return tuple(wrapper.wrap(packet, int(time.time())) for packet in openvpn_packets())


def openvpn_tcp_stream() -> bytes:
    return b"".join(frame_tcp(packet) for packet in openvpn_wire("none"))


def _field(text: bytes) -> bytes:
    return struct.pack("!H", len(text)) + text if text else struct.pack("!H", 0)


SERVER_KEY_METHOD = (
    struct.pack("!IB", 0, 2)
    + bytes(SERVER_KEY_SOURCE_SIZE)
    + _field(b"V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,keysize 256,tls-server\x00")
    + _field(b"")
    + _field(b"")
    + _field(b"IV_VER=2.6.3\n\x00")
)
SERVER_COMMANDS = b"PUSH_REPLY,route 10.8.0.1,topology subnet,ping 10\x00AUTH_FAILED,bad\x00"

# -- obfs4 -------------------------------------------------------------------------------------

OBFS4_KEYS = bytes(range(72))


def obfs4_frames() -> bytes:
    encoder = FrameEncoder(OBFS4_KEYS)
    return (
        encoder.encode_packet(PacketType.PRNG_SEED, os.urandom(24))
        + encoder.encode_data(b"hello" * 400)
        + encoder.encode_packet(PacketType.PAYLOAD, b"", padding=300)
        + encoder.encode_packet(9, b"unknown type")
    )


def obfs4_capture() -> Obfs4Capture:
    """The real obfs4proxy's hello to one client, and that client's inputs (tests/vectors)."""
    return captures()["handshake"]
