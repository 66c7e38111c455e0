"""EAP-MSCHAPv2 from the peer's side (RFC 2759, draft-kamath-pppext-eap-mschapv2, RFC 3079).

The usual username/password road-warrior login. The server proves it knows the password too (its
``S=`` authenticator response), and both derive the MSK that then keys IKE's AUTH payloads.

MD4, which the NT password hash needs, is written out here: OpenSSL 3 keeps it in the legacy
provider, which Python's hashlib does not load.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

try:  # cryptography ≥ 43 keeps DES where it belongs
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - cryptography 42
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore[no-redef,unused-ignore]
from cryptography.hazmat.primitives.ciphers import Cipher, modes

# EAP codes and types.
EAP_REQUEST = 1
EAP_RESPONSE = 2
EAP_SUCCESS = 3
EAP_FAILURE = 4
EAP_IDENTITY = 1
EAP_NAK = 3
EAP_MSCHAPV2 = 26

# MS-CHAPv2 op-codes.
CHALLENGE = 1
RESPONSE = 2
SUCCESS = 3
FAILURE = 4

CHALLENGE_SIZE = 16

_MAGIC1 = b"Magic server to client signing constant"
_MAGIC2 = b"Pad to make it do more than one iteration"
_MASTER_MAGIC = b"This is the MPPE Master Key"
_SEND_MAGIC = (
    b"On the client side, this is the send key; on the server side, it is the receive key."
)
_RECEIVE_MAGIC = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHA_PAD1 = bytes(40)
_SHA_PAD2 = b"\xf2" * 40


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()  # noqa: S324 - MSCHAPv2 and MPPE are defined over SHA-1


def md4(data: bytes) -> bytes:
    """RFC 1320 MD4."""

    def rotl(x: int, n: int) -> int:
        x &= 0xFFFFFFFF
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    length = len(data) * 8
    data += b"\x80" + bytes(-(len(data) + 9) % 64) + struct.pack("<Q", length & (2**64 - 1))
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for block in range(0, len(data), 64):
        x = struct.unpack_from("<16I", data, block)
        a, b, c, d = h
        for i in range(16):
            k, s = i, (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, rotl(a + ((b & c) | (~b & d)) + x[k], s), b, c
        for i in range(16):
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, rotl(a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999, s), b, c
        for i in range(16):
            k = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i]
            s = (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, rotl(a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1, s), b, c
        h = [(v + w) & 0xFFFFFFFF for v, w in zip(h, (a, b, c, d), strict=True)]
    return struct.pack("<4I", *h)


def nt_hash(password: str) -> bytes:
    return md4(password.encode("utf-16-le"))


def _des_key(seven: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes, one parity bit each (unused by DES, set odd)."""
    bits = int.from_bytes(seven, "big")
    out = bytearray()
    for i in range(8):
        byte = ((bits >> (49 - 7 * i)) & 0x7F) << 1
        out.append(byte | (bin(byte).count("1") % 2 == 0))
    return bytes(out)


def _des(key7: bytes, block: bytes) -> bytes:
    key = _des_key(key7)
    # One DES block per key, as MSCHAPv2 defines; DES is triple DES with one key thrice.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(block) + encryptor.finalize()


def challenge_hash(peer_challenge: bytes, server_challenge: bytes, username: str) -> bytes:
    return _sha1(peer_challenge + server_challenge + username.encode())[:8]


def nt_response(password_hash: bytes, challenge: bytes) -> bytes:
    padded = password_hash + bytes(5)
    return b"".join(_des(padded[i : i + 7], challenge) for i in (0, 7, 14))


def authenticator_response(password_hash: bytes, response: bytes, challenge: bytes) -> bytes:
    """The 20 bytes the server shows as ``S=<40 hex digits>``."""
    digest = _sha1(md4(password_hash) + response + _MAGIC1)
    return _sha1(digest + challenge + _MAGIC2)


def master_session_key(password_hash: bytes, response: bytes) -> bytes:
    """The 64-byte MSK strongSwan (and Windows) derive: the two MPPE keys, then 32 zero bytes."""
    master = _sha1(md4(password_hash) + response + _MASTER_MAGIC)[:16]
    first = _sha1(master + _SHA_PAD1 + _SEND_MAGIC + _SHA_PAD2)[:16]
    second = _sha1(master + _SHA_PAD1 + _RECEIVE_MAGIC + _SHA_PAD2)[:16]
    return first + second + bytes(32)


class MsChapV2Peer:
    """One login: answers the server's challenge and checks its success message.

    ``peer_challenge`` is the 16 random bytes the peer contributes, injectable for replay.
    """

    def __init__(self, username: str, password: str, peer_challenge: bytes) -> None:
        self.username = username
        self._password_hash = nt_hash(password)
        self._peer_challenge = peer_challenge
        self._expected: bytes | None = None
        self._response = b""

    def respond(self, server_challenge: bytes) -> bytes:
        """The 49-byte value of the Response packet."""
        challenge = challenge_hash(self._peer_challenge, server_challenge, self.username)
        self._response = nt_response(self._password_hash, challenge)
        self._expected = authenticator_response(self._password_hash, self._response, challenge)
        return self._peer_challenge + bytes(8) + self._response + b"\x00"

    def verify_success(self, message: bytes) -> bool:
        """Whether the server's ``S=…`` proves it knows the password."""
        if self._expected is None or not message.startswith(b"S="):
            return False
        shown = message[2:42].decode("ascii", "replace").upper()
        return hmac.compare_digest(shown, self._expected.hex().upper())

    def msk(self) -> bytes:
        return master_session_key(self._password_hash, self._response)


def eap_packet(code: int, identifier: int, kind: int | None = None, data: bytes = b"") -> bytes:
    body = b"" if kind is None else bytes([kind]) + data
    return struct.pack("!BBH", code, identifier, 4 + len(body)) + body


def mschapv2_packet(opcode: int, mschap_id: int, value: bytes) -> bytes:
    """The type data of an EAP-MSCHAPv2 packet (after the EAP type byte)."""
    return struct.pack("!BBH", opcode, mschap_id, 4 + len(value)) + value


@dataclass(frozen=True, slots=True)
class EapReply:
    """Send this EAP packet to the server (in the next IKE_AUTH request)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class EapSucceeded:
    """The server said EAP success after proving the password: key IKE's AUTH with the MSK."""

    msk: bytes


@dataclass(frozen=True, slots=True)
class EapRefused:
    """The login failed (``auth``) or the exchange made no sense (``protocol``); ``packet`` is the
    acknowledgement a real client sends, if any, so the server ends the half-open SA at once."""

    refused_us: bool
    detail: str
    packet: bytes | None = None


EapStep = EapReply | EapSucceeded | EapRefused


class EapMsChapV2Client:
    """The peer's side of one EAP-MSCHAPv2 login: an EAP request in, the next step out."""

    def __init__(self, username: str, password: str, peer_challenge: bytes) -> None:
        self.username = username
        self._login = MsChapV2Peer(username, password, peer_challenge)
        self._proved = False

    def answer(self, packet: bytes) -> EapStep:
        if len(packet) < 4:
            return EapRefused(False, "a malformed EAP packet")
        code, identifier = packet[0], packet[1]
        if code == EAP_SUCCESS:
            if not self._proved:
                return EapRefused(False, "EAP success before the server proved the password")
            return EapSucceeded(self._login.msk())
        if code == EAP_FAILURE:
            return EapRefused(True, "EAP failure: the responder refused the login")
        if code != EAP_REQUEST or len(packet) < 5:
            return EapRefused(False, f"unexpected EAP code {code}")
        kind, data = packet[4], packet[5:]
        if kind == EAP_IDENTITY:
            return EapReply(eap_packet(EAP_RESPONSE, identifier, EAP_IDENTITY, self._name))
        if kind != EAP_MSCHAPV2:  # ask for MSCHAPv2 instead
            return EapReply(eap_packet(EAP_RESPONSE, identifier, EAP_NAK, bytes([EAP_MSCHAPV2])))
        opcode = data[0] if data else None
        if opcode == CHALLENGE and len(data) >= 5 + CHALLENGE_SIZE and data[4] == CHALLENGE_SIZE:
            value = self._login.respond(data[5 : 5 + CHALLENGE_SIZE])
            response = mschapv2_packet(RESPONSE, data[1], bytes([len(value)]) + value + self._name)
            return EapReply(eap_packet(EAP_RESPONSE, identifier, EAP_MSCHAPV2, response))
        if opcode == SUCCESS:
            if not self._login.verify_success(data[4:]):
                return EapRefused(
                    True, "the responder's MSCHAPv2 success does not prove the password"
                )
            self._proved = True
            return EapReply(eap_packet(EAP_RESPONSE, identifier, EAP_MSCHAPV2, bytes([SUCCESS])))
        if opcode == FAILURE:
            ack = eap_packet(EAP_RESPONSE, identifier, EAP_MSCHAPV2, bytes([FAILURE]))
            return EapRefused(True, f"EAP-MSCHAPv2 refused the login ({_ms_error(data[4:])})", ack)
        return EapRefused(False, "a malformed EAP-MSCHAPv2 request")

    @property
    def _name(self) -> bytes:
        return self.username.encode()


def _ms_error(message: bytes) -> str:
    """The ``E=691`` of an MSCHAPv2 failure message, or a short note that there is none."""
    for part in message.decode("ascii", "replace").split():
        if part.startswith("E=") and part[2:].isdigit():
            return f"E={part[2:]}"
    return "no error code"
