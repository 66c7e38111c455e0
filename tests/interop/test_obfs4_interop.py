"""obfs4 interop: obfs4proxy as Tor's managed client and ``vpnwatch check`` on the same bridge
list or torrc, against the same obfs4proxy bridges, must give the same verdict.

The real client is what Tor does with the file. ``tor --verify-config`` first says whether Tor
takes it at all (a torrc as it is; a bridge list as Tor Browser uses one, each line a ``Bridge``
option); then, as Tor does for each obfs4 bridge, obfs4proxy runs as a managed client transport
(``TOR_PT_*`` variables) and its SOCKS5 listener is asked for the bridge's address, with the
line's ``k=v`` arguments as the SOCKS username; the reply, and bytes echoed back through the
session by the lab bridge's backend, are its verdict. Lines of other transports are Tor's
business, not obfs4proxy's: vpnwatch must list them as skipped (``config check``), naming each.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.interop.conftest import (
    FILE_REFUSED,
    Verdict,
    Verdicts,
    assert_agree,
    run,
    vpnwatch_check_files,
    vpnwatch_skipped,
)
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.obfs4 import Obfs4Bridge, Obfs4Client, Obfs4Server
from vpnwatch.lab.vantage import Vantage
from vpnwatch.targets.base import format_endpoint
from vpnwatch.targets.obfs4 import encode_cert

pytestmark = pytest.mark.lab

DEADLINE = 6.0
PORTS = {0: 4443, 1: 4444, 2: 4445}
#: Tor's port for a bridge line without one.
DEFAULT_PORT = 443
IPV6_PORT = 4446
CLOSED_PORT = 4499
DROPPED_PORT = 4498
SOCKS5 = Path(__file__).with_name("socks5.py")
#: What a SOCKS5 reply from the transport says about the bridge, in the README's classes.
SOCKS_FAILURES = {None: "timeout", 3: "unreachable", 4: "unreachable", 5: "refused", 6: "timeout"}

SNOWFLAKE = (
    "snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72"
    " fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=https://broker.example/"
    " fronts=cdn.example ice=stun:stun.example:3478"
)
WEBTUNNEL = (
    "webtunnel [2001:db8:7c31::2]:443 1D4D6FB2EA0E1CB9F1A8B2E3C4D5E6F708192A3B"
    " url=https://bridge.example/x ver=0.0.1"
)
MEEK = "meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625 url=https://m.example/"
PLAIN = "192.0.2.9:9001 4352E58420E68F5E40BF7C74FADDCCD9D1349413"


@dataclass
class Lab:
    namespace: Namespace
    vantage: Namespace
    bridges: dict[int, Obfs4Bridge]
    ipv6: Obfs4Bridge
    #: Listening on Tor's default bridge port.
    default_port: Obfs4Bridge
    socks_port: int
    directory: Path


@dataclass(frozen=True)
class Case:
    """A file of bridges; per obfs4 endpoint the expected failure (None: ok); what it skips."""

    file: str
    build: Callable[[Lab], tuple[str, dict[str, str | None]]]
    skipped: tuple[str, ...] = field(default=())


def _line(bridge: Obfs4Bridge, **changes: object) -> str:
    """``bridge``'s published line with the cert, port or iat-mode changed as a case needs."""
    cert = str(changes.get("cert", bridge.cert))
    port = int(str(changes.get("port", bridge.port)))
    iat_mode = changes.get("iat_mode", bridge.iat_mode)
    return (
        f"Bridge obfs4 {format_endpoint(bridge.host, port)} {bridge.fingerprint}"
        f" cert={cert} iat-mode={iat_mode}\n"
    )


def _one(bridge_of: Callable[[Lab], Obfs4Bridge], failure: str | None = None, **changes: object):  # type: ignore[no-untyped-def]
    def build(lab: Lab) -> tuple[str, dict[str, str | None]]:
        bridge = bridge_of(lab)
        port = int(str(changes.get("port", bridge.port)))
        return _line(bridge, **changes), {format_endpoint(bridge.host, port): failure}

    return build


def _random_cert() -> str:
    return encode_cert(os.urandom(20), os.urandom(32))


def _wrong_node_id(lab: Lab) -> tuple[str, dict[str, str | None]]:
    bridge = lab.bridges[0]
    cert = encode_cert(os.urandom(20), bridge.identity.public_key)
    return _line(bridge, cert=cert), {format_endpoint(bridge.host, bridge.port): "timeout"}


def _no_fingerprint(lab: Lab) -> tuple[str, dict[str, str | None]]:
    bridge = lab.bridges[1]
    line = f"obfs4 {bridge.host}:{bridge.port} cert={bridge.cert} iat-mode=1\n"
    return line, {format_endpoint(bridge.host, bridge.port): None}


def _old_arguments(lab: Lab) -> tuple[str, dict[str, str | None]]:
    bridge = lab.bridges[0]
    line = (
        f"obfs4 {bridge.host}:{bridge.port} node-id={bridge.identity.node_id.hex()}"
        f" public-key={bridge.identity.public_key.hex()} iat-mode=0\n"
    )
    return line, {format_endpoint(bridge.host, bridge.port): None}


def _two_bridges(lab: Lab) -> tuple[str, dict[str, str | None]]:
    good, closed = lab.bridges[2], format_endpoint(lab.bridges[2].host, CLOSED_PORT)
    text = _line(good).removeprefix("Bridge ") + _line(good, port=CLOSED_PORT).removeprefix(
        "Bridge "
    )
    return text, {format_endpoint(good.host, good.port): None, closed: "refused"}


def _mixed(lab: Lab) -> tuple[str, dict[str, str | None]]:
    bridge = lab.bridges[0]
    text = f"{SNOWFLAKE}\n{_line(bridge)}Bridge {WEBTUNNEL}\n{MEEK}\n{PLAIN}\n"
    return text, {format_endpoint(bridge.host, bridge.port): None}


def _torrc(lab: Lab) -> tuple[str, dict[str, str | None]]:
    bridge = lab.bridges[1]
    text = (
        "# bridges from Tor Browser\nUseBridges 1\nSocksPort 127.0.0.1:9150\n"
        "ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"
        "ClientTransportPlugin snowflake exec /usr/bin/snowflake-client\n"
        f"{_line(bridge)}Bridge {SNOWFLAKE}\n"
    )
    return text, {format_endpoint(bridge.host, bridge.port): None}


def _no_port(lab: Lab) -> tuple[str, dict[str, str | None]]:
    bridge = lab.default_port
    line = f"obfs4 {bridge.host} {bridge.fingerprint} cert={bridge.cert} iat-mode=0\n"
    return line, {format_endpoint(bridge.host, DEFAULT_PORT): None}


def _refused(line: str) -> Callable[[Lab], tuple[str, dict[str, str | None]]]:
    """A file Tor refuses, with ``{bridge}`` standing for the lab bridge's published line."""

    def build(lab: Lab) -> tuple[str, dict[str, str | None]]:
        bridge = lab.bridges[0]
        text = line.format(
            bridge=_line(bridge).removeprefix("Bridge ").strip(),
            cert=bridge.cert,
            port=bridge.port,
        )
        return text, {"": FILE_REFUSED}

    return build


CASES = {
    "iat-mode-0": Case("iat0.txt", _one(lambda lab: lab.bridges[0])),
    "iat-mode-1": Case("iat1.txt", _one(lambda lab: lab.bridges[1])),
    "iat-mode-2": Case("iat2.txt", _one(lambda lab: lab.bridges[2])),
    "iat-mode-differs": Case("iat-differs.txt", _one(lambda lab: lab.bridges[0], iat_mode=2)),
    "wrong-cert": Case(
        "wrong-cert.txt", _one(lambda lab: lab.bridges[0], "timeout", cert=_random_cert())
    ),
    "wrong-node-id": Case("wrong-node-id.txt", _wrong_node_id),
    "closed-port": Case(
        "closed.txt", _one(lambda lab: lab.bridges[0], "refused", port=CLOSED_PORT)
    ),
    "dropped": Case("dropped.txt", _one(lambda lab: lab.bridges[0], "timeout", port=DROPPED_PORT)),
    "ipv6": Case("ipv6.txt", _one(lambda lab: lab.ipv6)),
    "ipv6-wrong-cert": Case(
        "ipv6-wrong.txt", _one(lambda lab: lab.ipv6, "timeout", cert=_random_cert())
    ),
    "no-fingerprint": Case("no-fingerprint.txt", _no_fingerprint),
    "node-id-public-key": Case("old-form.txt", _old_arguments),
    "two-bridges": Case("two.bridges", _two_bridges),
    "mixed-transports": Case(
        "mixed.bridges",
        _mixed,
        ("snowflake bridge", "webtunnel bridge", "meek_lite bridge", "plain bridge"),
    ),
    "torrc-snippet": Case("torrc", _torrc, ("snowflake bridge",)),
    "no-port": Case("no-port.txt", _no_port),
    "host-name": Case(
        "host-name.txt",
        _refused("obfs4 bridge.interop.test:{port} cert={cert} iat-mode=0\n"),
    ),
    "junk-argument": Case("junk.txt", _refused("{bridge} junk\n")),
    "torrc-bare-line": Case(
        "torrc-bare", _refused("UseBridges 1\nClientTransportPlugin obfs4 exec x\n{bridge}\n")
    ),
}


def _obfs4_bridges(text: str) -> list[tuple[str, str, int, str]]:
    """(endpoint, host, port, SOCKS arguments) of each obfs4 line, read as Tor reads them."""
    found = []
    for raw in text.splitlines():
        words = raw.split()
        if words and words[0].lower() == "bridge":
            words = words[1:]
        if len(words) < 2 or words[0] != "obfs4":
            continue
        address = words[1]
        if address.startswith("["):
            host, _, port = address[1:].partition("]")
        else:
            host, _, port = address.partition(":") if address.count(":") == 1 else (address, "", "")
        port_number = int(port.lstrip(":") or DEFAULT_PORT)
        arguments = ";".join(word for word in words[2:] if "=" in word)
        found.append((format_endpoint(host, port_number), host, port_number, arguments))
    return found


def _as_torrc(path: Path) -> str:
    """The file as Tor reads it: a torrc as it is, a bridge list as Tor Browser uses one."""
    text = path.read_text()
    if path.name.startswith("torrc") or path.suffix == ".torrc":
        return text
    lines = [line.strip() for line in text.splitlines()]
    bridges = [line for line in lines if line and not line.startswith("#")]
    return "UseBridges 1\nClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n" + "".join(
        line + "\n" if line.lower().startswith("bridge ") else f"Bridge {line}\n"
        for line in bridges
    )


async def tor_refuses(path: Path, data_directory: Path) -> str | None:
    """Why ``tor --verify-config`` refuses the file; None when Tor takes it."""
    torrc = data_directory.with_suffix(".torrc")
    torrc.write_text(_as_torrc(path))
    status, out, _ = await run(
        ["tor", "--verify-config", "--defaults-torrc", "/dev/null", "-f", str(torrc),
         "DataDirectory", str(data_directory), "SocksPort", "0"]
    )  # fmt: skip
    if status == 0:
        return None
    return next((line for line in out.splitlines() if "[warn]" in line), out.strip())


async def real_client(lab: Lab, paths: list[Path]) -> list[Verdicts]:
    """What Tor makes of each file: refused, or what obfs4proxy makes of each obfs4 bridge."""
    refusals = await asyncio.gather(
        *(tor_refuses(path, lab.directory / f"tor-{index}") for index, path in enumerate(paths))
    )
    texts = [
        path.read_text() if refused is None else ""
        for path, refused in zip(paths, refusals, strict=True)
    ]
    bridges = [_obfs4_bridges(text) for text in texts]
    requests = [[host, port, arguments] for found in bridges for _, host, port, arguments in found]
    argv = [sys.executable, str(SOCKS5), str(lab.socks_port), str(DEADLINE)]
    status, out, err = await run(lab.vantage.argv(argv), input_=json.dumps(requests))
    assert status == 0, err
    answers = iter(json.loads(out))
    verdicts: list[dict[str, Verdict]] = []
    for found, refused in zip(bridges, refusals, strict=True):
        verdicts.append({} if refused is None else {"": Verdict(False, FILE_REFUSED, refused)})
        for endpoint, *_ in found:
            said = next(answers)
            ok = said["reply"] == 0 and said["echoed"]
            failure = None if ok else SOCKS_FAILURES.get(said["reply"])
            verdicts[-1][endpoint] = Verdict(ok, failure, f"SOCKS reply {said['reply']}")
    return verdicts


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with (
        Namespace() as namespace,
        Obfs4Server(namespace, iat_mode=0, port=PORTS[0]) as plain,
        Obfs4Server(namespace, iat_mode=1, port=PORTS[1]) as timed,
        Obfs4Server(namespace, iat_mode=2, port=PORTS[2]) as paranoid,
        Obfs4Server(namespace, port=IPV6_PORT, host=namespace.ip6) as ipv6,
        Obfs4Server(namespace, port=DEFAULT_PORT) as default_port,
        Vantage(namespace) as vantage,
        Obfs4Client(vantage.argv) as socks_port,
    ):
        namespace.exec(
            ["nft", "-f", "-"],
            input_=(
                "table inet vpnwatch_interop {\n  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f"    tcp dport {DROPPED_PORT} drop\n  }}\n}}\n"
            ),
        )
        yield Lab(
            namespace,
            vantage,
            {0: plain, 1: timed, 2: paranoid},
            ipv6,
            default_port,
            socks_port,
            tmp_path_factory.mktemp("obfs4-interop"),
        )


Outcome = tuple[Verdicts, Verdicts, dict[str, str | None], list[str]]


@pytest.fixture(scope="module")
def outcomes(lab: Lab) -> dict[str, Outcome]:
    """Every case at once: real client, vpnwatch, expected verdicts, and what vpnwatch skipped.

    The real client's connections, ``vpnwatch check`` of every file and ``vpnwatch config
    check`` of every file run side by side: each a single process, as the shared CPU prefers.
    """
    built = {name: case.build(lab) for name, case in CASES.items()}
    paths = {name: lab.directory / name / case.file for name, case in CASES.items()}
    for name, (text, _) in built.items():
        paths[name].parent.mkdir()
        paths[name].write_text(text)
    files = list(paths.values())
    accepts = {paths[name]: "" not in expected for name, (_, expected) in built.items()}
    accepted = [path for path, ok in accepts.items() if ok]

    async def everything() -> tuple[list[Verdicts], dict[Path, Verdicts], dict[Path, list[str]]]:
        return await asyncio.gather(
            real_client(lab, files),
            vpnwatch_check_files(lab.vantage.argv, accepts, DEADLINE),
            vpnwatch_skipped(lab.vantage.argv, accepted),
        )

    real, checked, skipped = asyncio.run(everything())
    return {
        name: (verdicts, checked[paths[name]], built[name][1], skipped.get(paths[name], []))
        for name, verdicts in zip(CASES, real, strict=True)
    }


@pytest.mark.parametrize("name", list(CASES))
def test_vpnwatch_agrees_with_the_real_client(outcomes: dict[str, Outcome], name: str) -> None:
    real, checked, expected, skipped = outcomes[name]
    assert_agree(real, checked, expected)
    assert tuple(skipped) == CASES[name].skipped
