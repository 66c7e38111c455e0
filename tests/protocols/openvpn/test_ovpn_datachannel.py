"""The data channel's pieces against their specifications: the TLS 1.0 PRF's published vector,
P_DATA_V2's layouts built here by hand with ``cryptography``, the replay window, compression
framing, and what a tampered, replayed or foreign packet does. The real server's bytes are in
test_ovpn_data_vectors.py."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

from vpnwatch.protocols.openvpn.datachannel import (
    CIPHERS,
    DataChannel,
    Framing,
    UnsupportedCipher,
    framing_for,
    is_data_packet,
    make_suite,
)
from vpnwatch.protocols.openvpn.datakeys import (
    KEY_BLOCK_SIZE,
    DataKeys,
    DirectionKey,
    KeySources,
    prf_key_block,
    tls1_prf,
)
from vpnwatch.protocols.openvpn.packets import AuthenticationError, PacketError
from vpnwatch.protocols.openvpn.replay import PacketIdCounter, ReplayError, ReplayWindow

SEND = DirectionKey(bytes(range(64)), bytes(range(64, 128)))
RECEIVE = DirectionKey(bytes(range(128, 192)), bytes(range(192, 256)))
CLIENT_KEYS = DataKeys(send=SEND, receive=RECEIVE)
SERVER_KEYS = DataKeys(send=RECEIVE, receive=SEND)
PAYLOAD = b"\x45" + bytes(range(1, 84))  # what an IPv4 packet looks like to the framing


def test_tls1_prf_matches_the_published_vector() -> None:
    """The TLS 1.0/1.1 PRF test vector (secret 0xab * 48, label "PRF Testvector", seed 0xcd * 64)
    that TLS implementations share; OpenSSL's TLS1-PRF with MD5-SHA1 gives the same bytes."""
    out = tls1_prf(b"\xab" * 48, b"PRF Testvector" + b"\xcd" * 64, 104)
    assert out.hex().upper() == (
        "D3D4D1E349B5D515044666D51DE32BAB258CB521B6B053463E354832FD976754443BCF9A296519BC"
        "289ABCBC1187E4EBD31E602353776C408AAFB74CBC85EFF69255F9788FAA184CBB957A9819D84A5D"
        "7EB006EB459D3AE8DE9810454B8B2D8F1AFBC655A8C9A013"
    )


def _p_hash(name: str, secret: bytes, seed: bytes, size: int) -> bytes:
    out, a = b"", seed
    while len(out) < size:
        a = hmac.new(secret, a, name).digest()
        out += hmac.new(secret, a + seed, name).digest()
    return out[:size]


def test_prf_key_block_follows_openvpn_prf_inputs() -> None:
    """Master secret from pre-master and both random1, then the block from both random2 and
    the session ids, client first: OpenVPN's generate_key_expansion_openvpn_prf."""
    client = bytes([1]) * 48 + bytes([2]) * 32 + bytes([3]) * 32
    server = bytes([4]) * 32 + bytes([5]) * 32
    sources = KeySources.split(client, server)
    block = prf_key_block(sources, b"C" * 8, b"S" * 8)

    def prf(secret: bytes, seed: bytes, size: int) -> bytes:
        half = secret[:24], secret[24:]
        md5, sha1 = _p_hash("md5", half[0], seed, size), _p_hash("sha1", half[1], seed, size)
        return bytes(x ^ y for x, y in zip(md5, sha1, strict=True))

    master = prf(bytes([1]) * 48, b"OpenVPN master secret" + bytes([2]) * 32 + bytes([4]) * 32, 48)
    expected = prf(
        master,
        b"OpenVPN key expansion" + bytes([3]) * 32 + bytes([5]) * 32 + b"C" * 8 + b"S" * 8,
        KEY_BLOCK_SIZE,
    )
    assert block == expected
    keys = DataKeys.for_client(block)
    assert keys.send == DirectionKey(block[:64], block[64:128])
    assert keys.receive == DirectionKey(block[128:192], block[192:256])
    assert "secret" in repr(keys) and block[:8].hex() not in repr(keys) + repr(sources)


def test_key_sources_and_blocks_must_have_their_sizes() -> None:
    with pytest.raises(ValueError, match="client key source"):
        KeySources.split(bytes(111), bytes(64))
    with pytest.raises(ValueError, match="server key source"):
        KeySources.split(bytes(112), bytes(63))
    with pytest.raises(ValueError, match="256"):
        DataKeys.for_client(bytes(255))


# -- packet layouts, built by hand ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cipher", "aead"),
    [
        ("AES-128-GCM", lambda k: AESGCM(k[:16])),
        ("AES-256-GCM", lambda k: AESGCM(k[:32])),
        ("CHACHA20-POLY1305", lambda k: ChaCha20Poly1305(k[:32])),
    ],
)
def test_aead_p_data_v2_layout(cipher: str, aead: object) -> None:
    channel = DataChannel(make_suite(cipher), CLIENT_KEYS, peer_id=0xABCDEF, key_id=2)
    packet = channel.seal(PAYLOAD)
    header = struct.pack("!I", (9 << 3 | 2) << 24 | 0xABCDEF)
    pid = struct.pack("!I", 1)
    sealed = aead(SEND.cipher).encrypt(pid + SEND.hmac[:8], PAYLOAD, header + pid)  # type: ignore[operator]
    assert packet == header + pid + sealed[-16:] + sealed[:-16]
    assert channel.seal(PAYLOAD)[4:8] == struct.pack("!I", 2)  # the packet id counts


def test_aead_p_data_v1_authenticates_the_packet_id_only() -> None:
    channel = DataChannel(make_suite("AES-256-GCM"), CLIENT_KEYS, peer_id=None)
    packet = channel.seal(PAYLOAD)
    pid = struct.pack("!I", 1)
    sealed = AESGCM(SEND.cipher[:32]).encrypt(pid + SEND.hmac[:8], PAYLOAD, pid)
    assert packet == bytes([6 << 3]) + pid + sealed[-16:] + sealed[:-16]


def test_cbc_layout_hmac_over_iv_and_ciphertext() -> None:
    iv = bytes(range(16))
    suite = make_suite("AES-256-CBC", "SHA256", random_bytes=lambda n: iv[:n])
    packet = DataChannel(suite, CLIENT_KEYS, peer_id=7).seal(PAYLOAD)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(struct.pack("!I", 1) + PAYLOAD) + padder.finalize()
    encryptor = Cipher(algorithms.AES(SEND.cipher[:32]), modes.CBC(iv)).encryptor()
    ciphertext = iv + encryptor.update(plain) + encryptor.finalize()
    mac = hmac.new(SEND.hmac[:32], ciphertext, hashlib.sha256).digest()
    assert packet == struct.pack("!I", (9 << 3) << 24 | 7) + mac + ciphertext


# -- both directions, tampering, replays ------------------------------------------------------


def pair(
    cipher: str, peer_id: int | None = 5, framing: Framing | None = None
) -> tuple[DataChannel, DataChannel]:
    """A client channel and the server's mirror of it (keys swapped)."""
    suite = make_suite(cipher, "SHA1")
    framing = framing or Framing()
    client = DataChannel(suite, CLIENT_KEYS, peer_id=peer_id, framing=framing)
    server = DataChannel(suite, SERVER_KEYS, peer_id=peer_id, framing=framing)
    return client, server


@pytest.mark.parametrize("cipher", sorted(CIPHERS))
@pytest.mark.parametrize("peer_id", [None, 0, 0xFFFFFF])
def test_each_cipher_round_trips(cipher: str, peer_id: int | None) -> None:
    client, server = pair(cipher, peer_id)
    for size in (0, 1, 15, 16, 17, 1400):
        payload = bytes(range(256)) * 6
        assert server.open(client.seal(payload[:size])) == payload[:size]
        assert client.open(server.seal(payload[:size])) == payload[:size]


@pytest.mark.parametrize("cipher", ["AES-256-GCM", "CHACHA20-POLY1305", "AES-128-CBC"])
def test_any_flipped_bit_fails_authentication(cipher: str) -> None:
    client, server = pair(cipher)
    packet = client.seal(PAYLOAD)
    for index in range(4, len(packet)):
        tampered = bytearray(packet)
        tampered[index] ^= 0x01
        with pytest.raises(PacketError):
            server.open(bytes(tampered))
    assert server.open(packet) == PAYLOAD  # the forgeries did not move the window


def test_a_changed_peer_id_fails_authentication() -> None:
    client, server = pair("AES-256-GCM", peer_id=5)
    packet = bytearray(client.seal(PAYLOAD))
    packet[3] ^= 0x01
    with pytest.raises(AuthenticationError):
        server.open(bytes(packet))


@pytest.mark.parametrize("cipher", ["AES-256-GCM", "AES-256-CBC"])
def test_replayed_packets_are_rejected(cipher: str) -> None:
    client, server = pair(cipher)
    first, second = client.seal(b"one"), client.seal(b"two")
    assert server.open(second) == b"two"
    assert server.open(first) == b"one"  # reordered within the window
    for packet in (first, second):
        with pytest.raises(PacketError, match="already received"):
            server.open(packet)


def test_foreign_and_malformed_packets_are_packet_errors() -> None:
    client, server = pair("AES-256-GCM")
    packet = client.seal(PAYLOAD)
    with pytest.raises(PacketError, match="key id"):
        server.open(bytes([packet[0] | 1]) + packet[1:])
    with pytest.raises(PacketError, match="not a data packet"):
        server.open(bytes([4 << 3]) + packet[1:])
    with pytest.raises(PacketError, match="truncated"):
        server.open(packet[:20])
    with pytest.raises(PacketError):
        server.open(b"")
    cbc_client, cbc_server = pair("AES-256-CBC")
    with pytest.raises(PacketError, match="malformed"):
        cbc_server.open(cbc_client.seal(PAYLOAD)[:-1])


@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_but_packet_error(data: bytes) -> None:
    for cipher in ("AES-256-GCM", "AES-256-CBC"):
        _, server = pair(cipher)
        with contextlib.suppress(PacketError):
            server.open(data)


def test_unknown_ciphers_and_digests_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedCipher, match="BF-CBC"):
        make_suite("BF-CBC")
    with pytest.raises(UnsupportedCipher, match="WHIRLPOOL"):
        make_suite("AES-256-CBC", "WHIRLPOOL")
    assert make_suite("aes-256-gcm").name == "AES-256-GCM"


def test_is_data_packet() -> None:
    assert is_data_packet(bytes([9 << 3]) + bytes(3)) and is_data_packet(bytes([6 << 3 | 1]))
    assert not is_data_packet(b"") and not is_data_packet(bytes([4 << 3]))


# -- compression framing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pushed", "payload", "wire"),
    [
        (None, PAYLOAD, PAYLOAD),
        ("comp-lzo no", PAYLOAD, b"\xfa" + PAYLOAD),
        ("compress", PAYLOAD, b"\xfb" + PAYLOAD[1:] + PAYLOAD[:1]),
        ("compress lz4", PAYLOAD, b"\xfb" + PAYLOAD[1:] + PAYLOAD[:1]),
        ("compress stub-v2", PAYLOAD, PAYLOAD),
        ("compress lz4-v2", b"\x50abc", b"\x50\x00\x50abc"),
    ],
)
def test_compression_framing(pushed: str | None, payload: bytes, wire: bytes) -> None:
    framing = framing_for(pushed)
    assert framing.wrap(payload) == wire
    assert framing.unwrap(wire) == payload
    client, server = pair("AES-256-GCM", framing=framing)
    assert server.open(client.seal(payload)) == payload


@pytest.mark.parametrize(
    ("pushed", "compressed"),
    [("comp-lzo yes", b"\x66zzz"), ("compress lz4", b"\x69zzz"), ("compress lz4-v2", b"\x50\x01z")],
)
def test_a_compressed_packet_from_the_server_is_refused(pushed: str, compressed: bytes) -> None:
    with pytest.raises(PacketError, match="compressed"):
        framing_for(pushed).unwrap(compressed)


# -- packet ids -------------------------------------------------------------------------------


def test_packet_ids_count_from_one() -> None:
    counter = PacketIdCounter()
    assert [counter.next() for _ in range(3)] == [1, 2, 3]


def test_replay_window() -> None:
    window = ReplayWindow(size=4)
    with pytest.raises(ReplayError, match="0"):
        window.check(0)
    window.check(5)
    window.check(5)  # checking records nothing
    for packet_id in (5, 3, 6, 10):
        window.accept(packet_id)
    window.accept(7)  # 3 behind the highest: inside a window of 4
    for packet_id in (5, 6, 10, 7):
        with pytest.raises(ReplayError):
            window.check(packet_id)
    with pytest.raises(ReplayError, match="older"):
        window.check(6 - 0)  # 4 behind: outside
    window.accept(100)  # a jump clears the bitmap
    window.accept(99)
    with pytest.raises(ReplayError):
        window.accept(99)
