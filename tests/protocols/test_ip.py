"""ICMP and ICMPv6 echo packets, checked against scapy's independent encoder and decoder."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, IPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6

from vpnwatch.protocols import ip
from vpnwatch.protocols.ip import Echo, IcmpError, answer, echo_request, parse

V4 = ipaddress.IPv4Address("198.19.7.2"), ipaddress.IPv4Address("198.19.7.1")
V6 = ipaddress.IPv6Address("2001:2:0:7::2"), ipaddress.IPv6Address("2001:2:0:7::1")
PAYLOAD = bytes(range(56))


def test_an_ipv4_echo_request_is_what_scapy_builds() -> None:
    packet = echo_request(*V4, identifier=0x1234, sequence=7, payload=PAYLOAD)
    ours = IP(packet)
    theirs = IP(
        bytes(
            IP(src=str(V4[0]), dst=str(V4[1]), flags="DF", id=0)
            / ICMP(type=8, id=0x1234, seq=7)
            / PAYLOAD
        )
    )
    assert bytes(ours) == bytes(theirs)
    assert ours[ICMP].chksum == theirs[ICMP].chksum and ours.chksum == theirs.chksum


def test_an_ipv6_echo_request_is_what_scapy_builds() -> None:
    packet = echo_request(*V6, identifier=0xBEEF, sequence=65535, payload=PAYLOAD)
    theirs = IPv6(src=str(V6[0]), dst=str(V6[1]), hlim=64) / ICMPv6EchoRequest(
        id=0xBEEF, seq=65535, data=PAYLOAD
    )
    assert packet == bytes(theirs)


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_scapy_replies_parse_as_our_replies(addresses: tuple[ip.IPAddress, ip.IPAddress]) -> None:
    source, destination = addresses
    if source.version == 4:
        reply = bytes(
            IP(src=str(destination), dst=str(source)) / ICMP(type=0, id=9, seq=3) / b"abc"
        )
    else:
        reply = bytes(
            IPv6(src=str(destination), dst=str(source)) / ICMPv6EchoReply(id=9, seq=3, data=b"abc")
        )
    assert parse(reply) == Echo(destination, source, 9, 3, b"abc", reply=True)


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_answer_swaps_addresses_and_keeps_id_sequence_and_payload(
    addresses: tuple[ip.IPAddress, ip.IPAddress],
) -> None:
    source, destination = addresses
    reply = answer(echo_request(source, destination, 1, 2, PAYLOAD))
    assert reply is not None
    assert parse(reply) == Echo(destination, source, 1, 2, PAYLOAD, reply=True)
    assert answer(reply) is None  # a reply is not answered


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_any_flipped_bit_makes_the_packet_nothing(
    addresses: tuple[ip.IPAddress, ip.IPAddress],
) -> None:
    packet = echo_request(*addresses, identifier=5, sequence=6, payload=b"payload!")
    skip = {1} if addresses[0].version == 4 else {1, 2, 3}  # DSCP/ECN and flow label: not covered
    for index in range(len(packet)):
        if index in skip or (addresses[0].version == 6 and index == 7):  # hop limit is not covered
            continue
        damaged = bytearray(packet)
        damaged[index] ^= 0x10
        parsed = parse(bytes(damaged))
        assert parsed is None or parsed != parse(packet), index


def test_truncated_and_foreign_packets_are_nothing() -> None:
    packet = echo_request(*V4, identifier=5, sequence=6, payload=b"x" * 20)
    assert all(parse(packet[:cut]) is None for cut in range(len(packet)))
    udp = bytearray(packet)
    udp[9] = 17
    assert parse(bytes(udp)) is None
    assert parse(b"\x70" + bytes(60)) is None


def test_an_unreachable_quoting_our_echo_names_it() -> None:
    request = echo_request(*V4, identifier=77, sequence=12, payload=PAYLOAD)
    router = "198.19.7.254"
    error = bytes(IP(src=router, dst=str(V4[0])) / ICMP(type=3, code=1) / IPerror(request[:28]))
    assert parse(error) == IcmpError(ipaddress.IPv4Address(router), True, 1, 77, 12)
    request6 = echo_request(*V6, identifier=78, sequence=13, payload=PAYLOAD)
    error6 = bytes(
        IPv6(src="2001:2:0:7::fe", dst=str(V6[0])) / ICMPv6DestUnreach(code=3) / request6
    )
    parsed = parse(error6)
    assert isinstance(parsed, IcmpError) and (parsed.identifier, parsed.sequence) == (78, 13)
    assert parsed.unreachable and parsed.code == 3


def test_mixed_versions_and_out_of_range_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="one IP version"):
        echo_request(V4[0], V6[1], 1, 1, b"")
    with pytest.raises(ValueError, match="16 bits"):
        echo_request(*V4, identifier=1, sequence=65536, payload=b"")
