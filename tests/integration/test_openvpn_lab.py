"""The OpenVPN probe and the real ``openvpn`` client on the same .ovpn files, against real servers.

Every case runs both and demands that they agree; the probe must also classify the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vpnwatch.importers.ovpn import load_ovpn
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import (
    SERVER_NAME,
    OpenVPNLab,
    generate_pki,
    genkey,
    run_real_client,
    write_ovpn,
)
from vpnwatch.probes.openvpn import OPENVPN
from vpnwatch.result import Failure, Result
from vpnwatch.targets.openvpn import OpenVPNTarget

pytestmark = [pytest.mark.lab, pytest.mark.slow]

probe_openvpn = OPENVPN.probe()

PROBE_TIMEOUT = 4.0
REAL_CLIENT_TIMEOUT = 8.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenVPNLab]:
    with Namespace() as namespace:
        lab = OpenVPNLab(namespace, tmp_path_factory.mktemp("openvpn-lab"))
        lab.start()
        yield lab


@dataclass
class Case:
    """One client config: which server, and what is changed from the correct config."""

    server: str
    ok: bool
    failure: Failure | None = None
    stage: str = "auth"
    wrong_ca: bool = False
    no_client_cert: bool = False
    no_wrap: bool = False
    wrong_wrap_key: bool = False
    password: str | None = None
    port: int | None = None
    extra: list[str] = field(default_factory=list)


def write_case(lab: OpenVPNLab, case: Case, directory: Path, name: str) -> Path:
    server = lab.servers[case.server]
    variant = server.variant
    with_cert = variant.requires_client_cert and not case.no_client_cert
    auth_user_pass = None
    if variant.credentials is not None:
        username, password = variant.credentials
        (directory / "up.txt").write_text(f"{username}\n{case.password or password}\n")
        auth_user_pass = Path("up.txt")  # relative to the config, for both clients
    wrap_key = server.client_wrap_key
    if case.wrong_wrap_key:
        wrap_key = genkey("secret", directory / "other.key")
    return write_ovpn(
        directory / f"{name}.ovpn",
        host=server.host,
        port=case.port or server.port,
        proto=variant.proto,
        ca=generate_pki().ca if case.wrong_ca else lab.pki.ca,
        cert=lab.pki.client_cert if with_cert else None,
        key=lab.pki.client_key if with_cert else None,
        wrap="none" if case.no_wrap else variant.wrap,
        wrap_key=wrap_key,
        auth_user_pass=auth_user_pass,
        extra=case.extra,
    )


async def both(config: Path) -> tuple[Result, bool, str]:
    (target,) = load_ovpn(config)
    result, real = await asyncio.gather(
        probe_openvpn(target, PROBE_TIMEOUT), run_real_client(config, REAL_CLIENT_TIMEOUT)
    )
    return result, real.ok, real.log


CASES = {
    "udp-plain": Case("udp-plain", ok=True),
    "udp-tls-auth": Case("udp-tls-auth", ok=True),
    "tcp-tls-crypt": Case("tcp-tls-crypt", ok=True),
    "udp-tls-crypt-v2": Case("udp-tls-crypt-v2", ok=True),
    "udp-password": Case("udp-password", ok=True),
    "tcp-plain": Case("tcp-plain", ok=True),
    "verify-x509-name": Case("udp-plain", ok=True, extra=[f"verify-x509-name {SERVER_NAME} name"]),
    "wrong-ca": Case("udp-plain", ok=False, failure=Failure.TLS_CERT, stage="tls", wrong_ca=True),
    "wrong-x509-name": Case(
        "tcp-plain", ok=False, failure=Failure.TLS_CERT, stage="tls",
        extra=["verify-x509-name impostor name"],
    ),
    "missing-tls-auth": Case(
        "udp-tls-auth", ok=False, failure=Failure.TIMEOUT, stage="reset", no_wrap=True
    ),
    "wrong-tls-auth": Case(
        "udp-tls-auth", ok=False, failure=Failure.TIMEOUT, stage="reset", wrong_wrap_key=True
    ),
    # Over TCP the server does not stay silent: it closes the connection.
    "wrong-tls-crypt": Case(
        "tcp-tls-crypt", ok=False, failure=Failure.EOF, stage="reset", wrong_wrap_key=True
    ),
    "wrong-password": Case(
        "udp-password", ok=False, failure=Failure.AUTH, stage="auth", password="not-the-password"
    ),
    "missing-client-cert": Case(
        "udp-plain", ok=False, failure=Failure.TIMEOUT, stage="auth", no_client_cert=True
    ),
    "closed-udp-port": Case(
        "udp-plain", ok=False, failure=Failure.REFUSED, stage="reset", port=1100
    ),
    "closed-tcp-port": Case(
        "tcp-plain", ok=False, failure=Failure.REFUSED, stage="connect", port=1100
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
async def test_probe_and_real_client_agree(
    lab: OpenVPNLab, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES[name]
    caplog.set_level(logging.DEBUG)
    result, real_ok, real_log = await both(write_case(lab, case, tmp_path, name))
    assert real_ok == case.ok, f"the real client disagrees with the expectation:\n{real_log}"
    assert result.ok == real_ok, result
    assert (result.failure, result.stage) == (case.failure, case.stage), result
    reached = [stage for stage, _ in result.stages]
    if case.ok:
        tcp = lab.servers[case.server].variant.proto == "tcp"
        assert reached == ["resolve"] + (["connect"] if tcp else []) + ["reset", "tls", "auth"]
        assert all(seconds >= 0 for _, seconds in result.stages)
    if case.password is not None:
        assert case.password not in repr(result) and case.password not in caplog.text


async def test_tcp_reset_after_connect(lab: OpenVPNLab, tmp_path: Path) -> None:
    server = lab.servers["tcp-plain"]
    config = write_case(lab, Case("tcp-plain", ok=False), tmp_path, "reset")
    lab.inject_tcp_reset(server.port)
    try:
        result, real_ok, real_log = await both(config)
    finally:
        lab.clear_censor()
    assert not real_ok, real_log
    assert "Connection reset" in real_log
    assert (result.ok, result.failure, result.stage) == (False, Failure.RESET, "reset"), result
    assert [stage for stage, _ in result.stages] == ["resolve", "connect"]


def test_keys_and_passwords_stay_out_of_target_reprs(lab: OpenVPNLab, tmp_path: Path) -> None:
    config = write_case(lab, Case("udp-password", ok=True), tmp_path, "secrets")
    (target,) = load_ovpn(config)
    _, password = lab.servers["udp-password"].variant.credentials or ("", "")
    assert password not in repr(target) and password not in target.model_dump_json()
    tls = load_ovpn(write_case(lab, Case("udp-tls-auth", ok=True), tmp_path, "tls"))[0]
    key_line = (lab.servers["udp-tls-auth"].client_wrap_key or "").splitlines()[-2]
    assert key_line not in repr(tls) and key_line not in tls.model_dump_json()


# -- bad peers on loopback: whatever they send, the probe returns a Result ----------------------


def loopback_target(port: int, proto: str) -> OpenVPNTarget:
    return OpenVPNTarget(
        name="bad-peer", host="127.0.0.1", port=port, proto=proto, ca=generate_pki().ca
    )  # type: ignore[arg-type]


GARBAGE = [
    b"",
    b"\x40",
    b"\x40" + b"\x00" * 8,  # header only
    b"\x40" + b"\x01" * 8 + b"\x09",  # impossible ACK count
    b"\x40" + b"\x01" * 8 + b"\x00\x00\x00",  # truncated message id
    b"\xff" * 3000,  # oversized, unknown opcode
    bytes(range(256)) * 4,
]


async def test_garbage_datagrams_never_raise_out_of_the_driver() -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)

    async def answer_with_garbage() -> None:
        _, peer = await loop.sock_recvfrom(sock, 4096)
        for data in GARBAGE:
            await loop.sock_sendto(sock, data, peer)

    server = asyncio.create_task(answer_with_garbage())
    try:
        result = await probe_openvpn(loopback_target(sock.getsockname()[1], "udp"), 1.5)
    finally:
        server.cancel()
        sock.close()
    assert (result.ok, result.failure, result.stage) == (False, Failure.PROTOCOL, "reset"), result


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        (b"\x00\x05" + GARBAGE[3][:5], Failure.PROTOCOL),  # a frame holding a malformed packet
        (b"\x00\x00", Failure.PROTOCOL),  # zero-length frame
        (b"\xff\xff" + b"x" * 100, Failure.PROTOCOL),  # oversized frame
        (b"\x00\x40\x38", Failure.EOF),  # truncated frame, then close
    ],
)
async def test_bad_tcp_streams_never_raise_out_of_the_driver(
    reply: bytes, failure: Failure
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(reply)
        await writer.drain()
        if failure is Failure.EOF:
            writer.close()
        else:
            await asyncio.sleep(2)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await probe_openvpn(loopback_target(port, "tcp"), 1.5)
    assert (result.ok, result.failure, result.stage) == (False, failure, "reset"), result


@pytest.mark.parametrize("proto", ["udp", "tcp"])
async def test_unresolvable_name_is_a_dns_failure(proto: str) -> None:
    target = loopback_target(1194, proto).model_copy(update={"host": "vpn.example.invalid"})
    result = await probe_openvpn(target, 3.0)
    assert (result.ok, result.failure, result.stage) == (False, Failure.DNS, "resolve"), result
    assert result.stages == ()


async def test_pem_openssl_refuses_is_a_tls_failure_not_a_crash() -> None:
    """A client certificate and a key that parse but do not belong together: OpenSSL refuses."""
    one, other = generate_pki(), generate_pki()
    target = OpenVPNTarget(
        name="mismatched",
        host="127.0.0.1",
        port=1,
        ca=one.ca,
        cert=one.client_cert,
        key=other.client_key,
    )
    result = await probe_openvpn(target, 1.5)
    assert (result.ok, result.failure, result.stage) == (False, Failure.TLS, "reset"), result
    assert result.detail.startswith("TLS setup failed: ") and "MISMATCH" in result.detail
