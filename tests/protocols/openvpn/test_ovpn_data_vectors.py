"""Known answers from the real openvpn 2.6 server (``tests/vectors/openvpn_data.json``).

From the key-method 2 randomness and session ids alone, the data keys must open the server's
packets (only keys derived as OpenVPN derives them do), and sealing the echo the probe sent must
give back its bytes exactly: same key, nonce, header and layout.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from tests.vectors.openvpn_data import DataCapture, data_captures
from vpnwatch.protocols import ip
from vpnwatch.protocols.openvpn.datachannel import DataChannel, framing_for, make_suite
from vpnwatch.protocols.openvpn.datakeys import DataKeys, KeySources, prf_key_block
from vpnwatch.protocols.openvpn.packets import AuthenticationError

CAPTURES = data_captures()


def keys(capture: DataCapture) -> DataKeys:
    sources = KeySources.split(capture.client_source, capture.server_source)
    block = prf_key_block(sources, capture.client_session, capture.server_session)
    return DataKeys.for_client(block)


def channel(
    capture: DataCapture, data_keys: DataKeys, ivs: list[bytes] | None = None
) -> DataChannel:
    """The capture's channel; a CBC suite draws its IVs from ``ivs`` in turn."""
    draws = iter(ivs or [])
    suite = make_suite(capture.cipher, capture.digest, random_bytes=lambda n: next(draws)[:n])
    return DataChannel(
        suite, data_keys, peer_id=capture.peer_id, framing=framing_for(capture.compression)
    )


def test_every_cipher_was_captured() -> None:
    ciphers = {capture.cipher for capture in CAPTURES.values()}
    assert {"AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305", "AES-256-CBC"} <= ciphers
    assert any(capture.compression for capture in CAPTURES.values())


@pytest.mark.parametrize("name", CAPTURES)
def test_the_servers_replies_open_with_the_derived_keys(name: str) -> None:
    capture = CAPTURES[name]
    client_keys = keys(capture)
    server_view = DataKeys(send=client_keys.receive, receive=client_keys.send)
    requests = [ip.parse(channel(capture, server_view).open(p)) for p in capture.client_packets]
    replies = [ip.parse(channel(capture, client_keys).open(p)) for p in capture.server_packets]
    local, destination = IPv4Address(capture.local), IPv4Address(capture.destination)
    assert replies, name
    for reply in replies:
        assert isinstance(reply, ip.Echo) and reply.reply, reply
        assert (reply.source, reply.destination) == (destination, local)
        assert any(
            isinstance(request, ip.Echo)
            and not request.reply
            and (request.identifier, request.sequence, request.payload)
            == (reply.identifier, reply.sequence, reply.payload)
            for request in requests
        )


@pytest.mark.parametrize("name", CAPTURES)
def test_sealing_the_probes_echoes_gives_their_bytes(name: str) -> None:
    capture = CAPTURES[name]
    client_keys = keys(capture)
    server_view = DataKeys(send=client_keys.receive, receive=client_keys.send)
    inner = [channel(capture, server_view).open(p) for p in capture.client_packets]
    mac_size = {"SHA1": 20, "SHA256": 32}[capture.digest]
    ivs = [packet[4 + mac_size : 4 + mac_size + 16] for packet in capture.client_packets]
    sealer = channel(capture, client_keys, ivs if "CBC" in capture.cipher else None)
    assert [sealer.seal(packet) for packet in inner] == list(capture.client_packets)


@pytest.mark.parametrize("name", CAPTURES)
def test_a_wrong_session_id_gives_keys_that_open_nothing(name: str) -> None:
    capture = CAPTURES[name]
    sources = KeySources.split(capture.client_source, capture.server_source)
    block = prf_key_block(sources, capture.client_session, bytes(8))
    wrong = channel(capture, DataKeys.for_client(block))
    for packet in capture.server_packets:
        with pytest.raises(AuthenticationError):
            wrong.open(packet)
