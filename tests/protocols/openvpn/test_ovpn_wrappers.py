"""tls-auth, tls-crypt and tls-crypt-v2 against values computed here, independently."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from vpnwatch.protocols.openvpn.packets import ControlPacket, Opcode, PacketError
from vpnwatch.protocols.openvpn.wrappers import (
    KeyFileError,
    NoWrap,
    TlsAuth,
    TlsCrypt,
    make_wrapper,
    parse_static_key,
    parse_tls_crypt_v2_client_key,
)

KEY = bytes(range(256))
SID = b"\x11" * 8
REMOTE = b"\x22" * 8
TIME = 0x5F000000
PACKET = ControlPacket(Opcode.CONTROL_V1, SID, (0,), REMOTE, 1, b"tls records")


def slot(key: bytes, index: int) -> bytes:
    """Slots in file order: cipher 0, HMAC 0, cipher 1, HMAC 1, 64 bytes each."""
    return key[64 * index : 64 * (index + 1)]


def static_key_file(key: bytes) -> str:
    lines = [key[i : i + 16].hex() for i in range(0, len(key), 16)]
    return (
        "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n"
        + "\n".join(lines)
        + "\n-----END OpenVPN Static key V1-----\n"
    )


@pytest.mark.parametrize(("direction", "send_slot"), [(None, 1), (0, 1), (1, 3)])
@pytest.mark.parametrize(
    ("digest", "hash_name"), [("SHA1", "sha1"), ("SHA256", "sha256"), ("SHA512", "sha512")]
)
def test_tls_auth_layout_and_hmac(
    direction: int | None, send_slot: int, digest: str, hash_name: str
) -> None:
    wire = TlsAuth(KEY, direction, digest).wrap(PACKET, TIME)
    size = hashlib.new(hash_name).digest_size
    packet_id = struct.pack("!II", 1, TIME)
    body = b"\x01" + struct.pack("!I", 0) + REMOTE + struct.pack("!I", 1) + b"tls records"
    header = bytes([4 << 3]) + SID
    mac = hmac.new(slot(KEY, send_slot)[:size], packet_id + header + body, hash_name).digest()
    assert wire == header + mac + packet_id + body


def test_tls_auth_directions_pair_up() -> None:
    client, server = TlsAuth(KEY, 1), TlsAuth(KEY, 0)
    assert server.unwrap(client.wrap(PACKET, TIME)) == PACKET
    assert client.unwrap(server.wrap(PACKET, TIME)) == PACKET
    both = TlsAuth(KEY, None)
    assert both.unwrap(TlsAuth(KEY, None).wrap(PACKET, TIME)) == PACKET


def test_tls_auth_packet_ids_count_up_per_packet() -> None:
    wrapper = TlsAuth(KEY, 1)
    first, second = wrapper.wrap(PACKET, TIME), wrapper.wrap(PACKET, TIME + 1)
    assert first[9 + 20 : 9 + 28] == struct.pack("!II", 1, TIME)
    assert second[9 + 20 : 9 + 28] == struct.pack("!II", 2, TIME + 1)


def test_tls_auth_rejects_wrong_key_and_direction() -> None:
    wire = TlsAuth(KEY, 0).wrap(PACKET, TIME)
    with pytest.raises(PacketError):
        TlsAuth(KEY, 0).unwrap(wire)  # same direction on both sides
    with pytest.raises(PacketError):
        TlsAuth(bytes(256), 1).unwrap(wire)


def test_tls_crypt_layout_tag_and_ciphertext() -> None:
    wire = TlsCrypt(KEY).wrap(PACKET, TIME)
    header = bytes([4 << 3]) + SID + struct.pack("!II", 1, TIME)
    plaintext = PACKET.body
    # A client encrypts with the second key set: cipher slot 2, HMAC slot 3.
    tag = hmac.new(slot(KEY, 3)[:32], header + plaintext, "sha256").digest()
    encryptor = Cipher(algorithms.AES(slot(KEY, 2)[:32]), modes.CTR(tag[:16])).encryptor()
    assert wire == header + tag + encryptor.update(plaintext) + encryptor.finalize()


def server_tls_crypt_wrap(packet: ControlPacket, key: bytes) -> bytes:
    """What a server sends: the first key set, computed here without the module."""
    header = packet.header + struct.pack("!II", 7, TIME)
    tag = hmac.new(slot(key, 1)[:32], header + packet.body, "sha256").digest()
    encryptor = Cipher(algorithms.AES(slot(key, 0)[:32]), modes.CTR(tag[:16])).encryptor()
    return header + tag + encryptor.update(packet.body) + encryptor.finalize()


def test_tls_crypt_unwraps_what_a_server_sends() -> None:
    assert TlsCrypt(KEY).unwrap(server_tls_crypt_wrap(PACKET, KEY)) == PACKET


def test_tls_crypt_rejects_tampering_and_other_keys() -> None:
    wire = bytearray(server_tls_crypt_wrap(PACKET, KEY))
    with pytest.raises(PacketError):
        TlsCrypt(bytes(256)).unwrap(bytes(wire))
    wire[-1] ^= 1
    with pytest.raises(PacketError):
        TlsCrypt(KEY).unwrap(bytes(wire))


def test_tls_crypt_v2_appends_wrapped_key_to_the_reset_only() -> None:
    wkc = b"W" * 38 + struct.pack("!H", 40)
    wrapper = make_wrapper("tls-crypt-v2", KEY + wkc)
    reset = ControlPacket(Opcode.CONTROL_HARD_RESET_CLIENT_V3, SID, message_id=0)
    wire = wrapper.wrap(reset, TIME)
    assert wire.endswith(wkc)
    assert len(wire) == 9 + 8 + 32 + len(reset.body) + len(wkc)
    assert not wrapper.wrap(PACKET, TIME).endswith(wkc)


@pytest.mark.parametrize("wrapper", [NoWrap(), TlsAuth(KEY, 1), TlsCrypt(KEY)], ids=repr)
@given(data=st.binary(max_size=2100))
def test_garbage_raises_only_packet_error(
    wrapper: NoWrap | TlsAuth | TlsCrypt, data: bytes
) -> None:
    with contextlib.suppress(PacketError):
        wrapper.unwrap(data)


def test_static_key_file_parses() -> None:
    assert parse_static_key(static_key_file(KEY)) == KEY


@pytest.mark.parametrize(
    "text",
    ["", static_key_file(KEY[:128]), static_key_file(KEY).replace("00010203", "zz010203")],
)
def test_bad_static_key_files(text: str) -> None:
    with pytest.raises(KeyFileError):
        parse_static_key(text)


def test_v2_client_key_checks_wrapped_key_length() -> None:
    wkc = b"W" * 40 + struct.pack("!H", 42)
    pem = "-----BEGIN OpenVPN tls-crypt-v2 client key-----\n{}\n-----END OpenVPN tls-crypt-v2 client key-----\n"
    assert (
        parse_tls_crypt_v2_client_key(pem.format(base64.b64encode(KEY + wkc).decode())) == KEY + wkc
    )
    with pytest.raises(KeyFileError):
        parse_tls_crypt_v2_client_key(
            pem.format(base64.b64encode(KEY + wkc[:-1] + b"\x00").decode())
        )


def test_reprs_hide_keys() -> None:
    for wrapper in (TlsAuth(KEY, 1), TlsCrypt(KEY)):
        assert KEY[:8].hex() not in repr(wrapper) and "\\x00\\x01" not in repr(wrapper)
