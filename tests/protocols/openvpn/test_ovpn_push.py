"""PUSH_REPLY parsing and the 2.6 client's rules for accepting it (the interop suite checks the
same rules against the real client; these pin each one down without a network)."""

from __future__ import annotations

import pytest

from vpnwatch.protocols.openvpn.push import (
    PullPolicy,
    PushAssembler,
    PushError,
    PushRefused,
    accept_push,
    parse_options,
)

#: What a 2.6 server pushes by default (captured from the lab's udp-plain server).
TYPICAL = (
    "PUSH_REPLY,route-gateway 198.19.0.1,topology subnet,ping 10,ping-restart 60,"
    "ifconfig 198.19.0.2 255.255.255.0,ifconfig-ipv6 2001:2:0:ff01::1000/64 2001:2:0:ff01::1,"
    "peer-id 3,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,"
    "key-derivation tls-ekm"
)


def lines_of(command: str) -> tuple[str, ...]:
    lines = PushAssembler().add(command)
    assert lines is not None
    return lines


def test_typed_values_of_a_typical_reply() -> None:
    reply = accept_push(lines_of(TYPICAL), PullPolicy(), server_cipher=None)
    assert reply.peer_id == 3
    assert reply.cipher == "AES-256-GCM"
    assert reply.ifconfig == ("198.19.0.2", "255.255.255.0")
    assert reply.ifconfig_ipv6 == ("2001:2:0:ff01::1000/64", "2001:2:0:ff01::1")
    assert reply.route_gateway == "198.19.0.1"
    assert reply.topology == "subnet"
    assert reply.key_derivation == "tls-ekm"
    assert reply.protocol_flags == ("cc-exit", "tls-ekm", "dyn-tls-crypt")
    assert reply.compression is None and reply.tun_mtu is None


def test_continuations_are_joined() -> None:
    assembler = PushAssembler()
    assert assembler.add("PUSH_REPLY,route 198.18.250.0 255.255.255.0,push-continuation 2") is None
    lines = assembler.add("PUSH_REPLY,peer-id 1,cipher AES-128-GCM,push-continuation 1")
    assert lines == ("route 198.18.250.0 255.255.255.0", "peer-id 1", "cipher AES-128-GCM")


@pytest.mark.parametrize(
    ("pushed", "policy", "refused"),
    [
        ("compress lz4-v2", PullPolicy(), "allow-compression"),
        ("compress lz4-v2", PullPolicy(allow_compression="asym"), None),
        ("comp-lzo yes", PullPolicy(), "allow-compression"),
        ("comp-lzo", PullPolicy(), "allow-compression"),
        ("comp-lzo no", PullPolicy(), None),
        ("compress", PullPolicy(), None),
        ("compress stub-v2", PullPolicy(), None),
        ("tun-mtu 9000", PullPolicy(), "tun-mtu-max"),
        ("tun-mtu 9000", PullPolicy(tun_mtu_max=9000), None),
        (
            "redirect-gateway def1",
            PullPolicy(pull_filters=(("reject", "redirect-"),)),
            "pull-filter",
        ),
        ("redirect-gateway def1", PullPolicy(pull_filters=(("ignore", "redirect-"),)), None),
        ("block-outside-dns", PullPolicy(), None),
    ],
)
def test_what_the_client_refuses(pushed: str, policy: PullPolicy, refused: str | None) -> None:
    lines = (*lines_of(TYPICAL), pushed)
    if refused is None:
        accept_push(lines, policy, server_cipher=None)
        return
    with pytest.raises(PushRefused, match=refused):
        accept_push(lines, policy, server_cipher=None)


def test_ignored_compression_is_not_applied() -> None:
    policy = PullPolicy(pull_filters=(("ignore", "compress"),))
    reply = accept_push((*lines_of(TYPICAL), "compress lz4-v2"), policy, server_cipher=None)
    assert reply.compression is None


def test_the_first_matching_filter_decides() -> None:
    policy = PullPolicy(pull_filters=(("accept", "route 198.18.250."), ("reject", "route ")))
    accept_push((*lines_of(TYPICAL), "route 198.18.250.0 255.255.255.0"), policy, None)
    with pytest.raises(PushRefused):
        accept_push((*lines_of(TYPICAL), "route 198.18.9.0 255.255.255.0"), policy, None)


def test_a_rejected_line_is_named_without_its_arguments() -> None:
    policy = PullPolicy(pull_filters=(("reject", "auth-token"),))
    with pytest.raises(PushRefused) as caught:
        accept_push(("auth-token SECRET-TOKEN", "cipher AES-256-GCM"), policy, None)
    assert "SECRET-TOKEN" not in str(caught.value) and "auth-token" in str(caught.value)


@pytest.mark.parametrize(
    ("pushed_cipher", "server_cipher", "policy", "refused"),
    [
        ("AES-256-CBC", None, PullPolicy(), True),
        ("AES-256-CBC", None, PullPolicy(fallback_cipher="AES-256-CBC"), False),
        ("aes-128-gcm", None, PullPolicy(), False),
        (None, "AES-256-GCM", PullPolicy(), False),  # the server's own cipher, if we offer it
        (None, "BF-CBC", PullPolicy(), True),
        (None, None, PullPolicy(fallback_cipher="AES-256-CBC"), False),
        (None, None, PullPolicy(), True),
    ],
)
def test_cipher_negotiation(
    pushed_cipher: str | None, server_cipher: str | None, policy: PullPolicy, refused: bool
) -> None:
    lines = ["peer-id 0", *([f"cipher {pushed_cipher}"] if pushed_cipher else [])]
    if refused:
        with pytest.raises(PushRefused, match="cipher"):
            accept_push(lines, policy, server_cipher)
    else:
        accept_push(lines, policy, server_cipher)


def test_malformed_values_are_push_errors() -> None:
    with pytest.raises(PushError):
        accept_push(("cipher AES-256-GCM", "tun-mtu lots"), PullPolicy(), None)
    with pytest.raises(PushError):
        PushAssembler().add("AUTH_FAILED")
    assert parse_options(["route 'quoted arg' x"]).options == (("route", "quoted arg", "x"),)
