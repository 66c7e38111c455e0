"""Tor cells against the real tor's bytes (``tor.json``) and tor-spec's rules."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import pytest

from tests.vectors.tor import AUTH_CHALLENGE, CERTS, NETINFO, VERSIONS, captures, split_cells
from vpnwatch.protocols.tor.cells import (
    Cell,
    CellReader,
    Command,
    MalformedCell,
    check_auth_challenge,
    created_fast_verifies,
    encode,
    kdf_tor,
    negotiate_version,
    netinfo_cell,
    parse_certs,
    parse_netinfo,
    versions_cell,
)


def test_reader_cuts_the_relays_bytes_as_the_spec_does() -> None:
    """Fed one byte at a time, the reader finds the cells an independent reading finds."""
    capture = captures()["link"]
    server = capture.sent("server")
    expected = split_cells(server)
    reader, cells = CellReader(), []
    for index in range(len(server)):
        reader.receive_data(server[index : index + 1])
        while (cell := reader.next_cell()) is not None:
            cells.append(cell)
            if cell.command == Command.VERSIONS:
                reader.link_version = negotiate_version(cell.payload)
    assert [(c.circuit, c.command, c.payload) for c in cells] == [
        (c.circuit, c.command, c.payload) for c in expected
    ]
    assert [c.command for c in cells] == [VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO, 6]


def test_our_cells_are_the_bytes_the_relay_accepted() -> None:
    capture = captures()["link"]
    [versions] = split_cells(capture.transcript[0][1])
    assert encode(versions_cell(), None) == capture.transcript[0][1]
    assert (versions.circuit, versions.payload) == (0, struct.pack(">HH", 4, 5))


def test_the_relay_picks_link_protocol_5() -> None:
    [versions, *_] = captures()["link"].server_cells()
    assert negotiate_version(versions.payload) == 5


@pytest.mark.parametrize(
    ("payload", "message"),
    [(struct.pack(">HHH", 1, 2, 3), "none of"), (b"\x00\x04\x00", "odd length")],
)
def test_versions_without_a_common_protocol_are_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedCell, match=message):
        negotiate_version(payload)


def test_certs_cell_of_the_real_relay() -> None:
    [cell] = [c for c in captures()["link"].server_cells() if c.command == CERTS]
    assert sorted(parse_certs(cell.payload)) == [1, 2, 4, 5, 7]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"\x01\x02\x00", "certificate header"),
        (b"\x01\x02\x00\x05abc", "runs past"),
        (b"\x02\x02\x00\x01a\x02\x00\x01b", "twice"),
    ],
)
def test_malformed_certs_cells(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedCell, match=message):
        parse_certs(payload)


def test_netinfo_of_the_real_bridge_names_us_and_hides_itself() -> None:
    """A bridge tells the client where it saw it (the lab host's side of the link, .1 of the
    bridge's /30) and, unlike a public relay, lists no address of its own."""
    capture = captures()["link"]
    [cell] = [c for c in capture.server_cells() if c.command == NETINFO]
    info = parse_netinfo(cell.payload)
    assert info.other_address == ipaddress.ip_address(capture.peer_address) - 1
    assert info.my_addresses == ()
    assert abs(info.timestamp - capture.unix_time) < 3600


def test_our_netinfo_round_trips_and_sends_no_time() -> None:
    address = ipaddress.ip_address("198.18.0.2")
    info = parse_netinfo(netinfo_cell(address).payload)
    assert (info.timestamp, info.other_address, info.my_addresses) == (0, address, ())
    assert parse_netinfo(netinfo_cell(None).payload).other_address == ipaddress.IPv4Address(0)


def test_auth_challenge_of_the_real_relay_is_well_formed() -> None:
    [cell] = [c for c in captures()["link"].server_cells() if c.command == AUTH_CHALLENGE]
    check_auth_challenge(cell.payload)
    with pytest.raises(MalformedCell):
        check_auth_challenge(cell.payload[:33])
    with pytest.raises(MalformedCell):
        check_auth_challenge(cell.payload[:32] + b"\x00\x09")


def test_kdf_tor_is_sha1_of_the_seed_and_a_counter() -> None:
    seed = bytes(range(40))
    expected = b"".join(hashlib.sha1(seed + bytes([i])).digest() for i in range(3))[:50]
    assert kdf_tor(seed, 50) == expected


def test_the_relays_created_fast_answers_our_create_fast() -> None:
    capture = captures()["link"]
    [*_, created] = capture.server_cells()
    sent = capture.draws[1]
    assert created_fast_verifies(sent, created.payload)
    flipped = bytes([created.payload[25] ^ 1])
    assert not created_fast_verifies(sent, created.payload[:25] + flipped + created.payload[26:])
    assert not created_fast_verifies(bytes(20), created.payload)


def test_fixed_cells_are_padded_and_bounded() -> None:
    assert len(encode(Cell(0x80000001, Command.DESTROY, b"\0"), 5)) == 514
    assert len(encode(Cell(0, Command.PADDING, b""), None)) == 512
    with pytest.raises(ValueError):
        encode(Cell(1, Command.RELAY, bytes(510)), 5)
