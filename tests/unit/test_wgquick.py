from __future__ import annotations

import pytest

from tests.conftest import new_key
from vpnwatch.errors import ConfigError
from vpnwatch.importers import load_file

PRIVATE = new_key()
PEER = new_key()
PSK = new_key()


def conf(*peers: str, interface: str = f"PrivateKey = {PRIVATE}") -> str:
    return "[Interface]\n" + interface + "\nAddress = 198.19.0.2/32\n" + "".join(peers)


def peer(endpoint: str | None = "198.18.0.2:51820", extra: str = "") -> str:
    line = f"Endpoint = {endpoint}\n" if endpoint else ""
    return f"\n[Peer]  # a comment\npublickey = {PEER}\n{line}{extra}AllowedIPs = 0.0.0.0/0\n"


def test_one_peer_is_one_target_named_after_the_file(write):
    (target,) = load_file(write("fra-1.conf", conf(peer())))
    assert (target.name, target.host, target.port) == ("fra-1", "198.18.0.2", 51820)
    assert target.protocol == "wireguard"
    assert target.transport == "udp"
    assert target.preshared_key is None


def test_several_peers_are_named_by_endpoint_and_peers_without_endpoint_skipped(write):
    text = conf(
        peer(),
        peer("[2001:2::2]:443", f"PresharedKey = {PSK}\n"),
        peer(None),
        peer("vpn.example.invalid:51820"),
    )
    targets = load_file(write("multi.conf", text))
    assert [t.name for t in targets] == [
        "multi/198.18.0.2:51820",
        "multi/[2001:2::2]:443",
        "multi/vpn.example.invalid:51820",
    ]
    assert targets[1].host == "2001:2::2"
    assert targets[1].preshared_key is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            conf(peer(), interface="Address = 1.2.3.4/32"),
            "bad.conf: line 1: [Interface]: missing PrivateKey",
        ),
        (
            conf(peer(), interface="PrivateKey = not-base64!"),
            "bad.conf: line 2: [Interface] PrivateKey: is not valid base64",
        ),
        (
            conf(peer(), interface="PrivateKey = AAAA"),
            "bad.conf: line 2: [Interface] PrivateKey: decodes to 3 bytes, not 32",
        ),
        (
            conf(peer("198.18.0.2")),
            "bad.conf: line 7: [Peer] Endpoint: has no port",
        ),
        (
            conf(peer("198.18.0.2:99999")),
            "bad.conf: line 7: [Peer] Endpoint: has a port that is not a number from 1 to 65535",
        ),
        (conf(peer("2001:2::2:51820")), "write IPv6 addresses as [address]:port"),
        (conf(peer(None)), "bad.conf: no [Peer] has an Endpoint: nothing to probe"),
        (
            conf(peer().replace(f"publickey = {PEER}", "# no key")),
            "bad.conf: line 5: [Peer]: missing PublicKey",
        ),
        (
            conf(peer().replace("publickey", "Public")),
            "bad.conf: line 6: Public is not a key of [Peer] (wg-quick refuses the file)",
        ),
        (
            conf(peer(extra="DNS = 198.18.0.53\n")),
            "bad.conf: line 8: DNS is not a key of [Peer]",
        ),
        ("PrivateKey = x\n", "bad.conf: line 1: PrivateKey appears before any [Section]"),
        (conf(peer()) + "\n[Pear]\n", "bad.conf: line 10: unknown section [pear]"),
        (conf(peer()) + "garbage\n", "bad.conf: line 9: expected 'Key = Value' or a [Section]"),
    ],
    ids=lambda case: case if isinstance(case, str) and not case.startswith("[") else "",
)
def test_malformed_files_name_file_line_and_field(write, text, message):
    with pytest.raises(ConfigError) as info:
        load_file(write("bad.conf", text))
    assert message in str(info.value)
    assert PRIVATE not in str(info.value)


def test_a_bad_private_key_is_never_echoed(write):
    secret = PRIVATE[:-4]  # valid-looking base64 of the wrong length
    with pytest.raises(ConfigError) as info:
        load_file(write("bad.conf", conf(peer(), interface=f"PrivateKey = {secret}")))
    assert secret not in str(info.value)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown file type '\.pdf'"):
        load_file(tmp_path / "x.pdf")
    with pytest.raises(ConfigError, match="no such file"):
        load_file(tmp_path / "gone.conf")


def test_every_key_wg_quick_accepts_is_accepted(write):
    interface = (
        f"privatekey={PRIVATE}\nListenPort = 51999\nFwMark = 0x1234\nAddress = 198.19.0.2/32, "
        "2001:2::2/128\nDNS = 198.18.0.53, lab.test\nMTU = 1380\nTable = off\n"
        "PreUp = true\nPostUp = true\nPreDown = true\nPostDown = true\nSaveConfig = false"
    )
    extra = f"PresharedKey = {PSK}\nPersistentKeepalive = 25\n"
    (target,) = load_file(write("all.conf", conf(peer(extra=extra), interface=interface)))
    assert target.preshared_key is not None
