"""The control checks on the machine contract, driven by hand: bytes in, ``now`` moved by the test.

DNS replies are assembled here byte by byte (RFC 1035 layout), not by the library the check parses
them with. TLS against a real server is tests/integration/test_controls_lab.py's; here only what
needs no server, and OpenSSL's own server side in memory for the certificate verdicts.
"""

from __future__ import annotations

import contextlib
import ssl
import struct
from pathlib import Path

import pytest
from cryptography import x509

from tests.machines import drain
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.protocols.controls import DnsCheck, TcpCheck, TlsCheck
from vpnwatch.protocols.machine import (
    CertificateVerified,
    Completed,
    Event,
    Failed,
    LocalProtocolError,
    Machine,
    StageCompleted,
)
from vpnwatch.result import Failure

NAME = "vpnwatch.test"
QUERY_ID = 0x5A17
SERVER_NAME = "controls.vpnwatch.test"


def failure_of(machine: Machine) -> Failed:
    [event] = drain(machine)
    assert isinstance(event, Failed), event
    assert machine.finished
    return event


def assert_finished_and_deaf(machine: Machine, now: float) -> None:
    """A finished machine ignores what follows: no event, nothing to send."""
    machine.receive(b"\x00" * 64, now)
    assert drain(machine) == [] and machine.data_to_send(now) == []


# -- TCP ------------------------------------------------------------------------------------------


def test_tcp_check_is_done_once_connected() -> None:
    check = TcpCheck()
    assert check.stages == ()
    check.start(0.0)
    assert check.data_to_send(0.0) == []
    assert drain(check) == [Completed()]
    assert check.finished and check.timer() is None
    with pytest.raises(LocalProtocolError):
        check.start(1.0)


# -- DNS ------------------------------------------------------------------------------------------

RCODES = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}


def question_of(query: bytes) -> bytes:
    """The question section of a query with one question and nothing after it."""
    qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHH", query, 4)
    assert (qdcount, ancount, nscount, arcount) == (1, 0, 0, 0)
    end = 12
    while length := query[end]:
        end += 1 + length
    return query[12 : end + 1 + 4]  # the root label, QTYPE and QCLASS


def reply(
    query: bytes,
    *,
    rcode: str = "NOERROR",
    addresses: tuple[bytes, ...] = (),
    query_id: int | None = None,
    response: bool = True,
    question: bytes | None = None,
) -> bytes:
    """A resolver's answer to ``query``: A records for ``addresses`` pointing at the question."""
    (own_id,) = struct.unpack_from("!H", query)
    flags = (0x8000 if response else 0) | 0x0100 | 0x0080 | RCODES[rcode]  # QR, RD, RA
    header = struct.pack(
        "!HHHHHH", own_id if query_id is None else query_id, flags, 1, len(addresses), 0, 0
    )
    records = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, len(address)) + address
        for address in addresses
    )
    return header + (question or question_of(query)) + records


def dns_check() -> tuple[DnsCheck, bytes]:
    check = DnsCheck(NAME, "A", query_id=QUERY_ID)
    assert check.stages == ("answer",)
    check.start(0.0)
    [query] = check.data_to_send(0.0)
    assert struct.unpack_from("!HH", query) == (QUERY_ID, 0x0100)  # our id, recursion desired
    return check, query


def test_dns_query_asks_the_question() -> None:
    _, query = dns_check()
    assert question_of(query) == b"\x08vpnwatch\x04test\x00" + struct.pack("!HH", 1, 1)


def test_dns_answer_completes() -> None:
    check, query = dns_check()
    check.receive(reply(query, addresses=(bytes([198, 18, 255, 10]),)), 0.2)
    assert drain(check) == [StageCompleted("answer"), Completed("NOERROR, 1 records")]
    assert_finished_and_deaf(check, 0.3)


def test_dns_nxdomain_is_an_answer() -> None:
    """The resolver answered the question asked: that is all the control proves."""
    check, query = dns_check()
    check.receive(reply(query, rcode="NXDOMAIN"), 0.2)
    assert drain(check) == [StageCompleted("answer"), Completed("NXDOMAIN, 0 records")]


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
def test_dns_error_rcode_is_a_protocol_failure(rcode: str) -> None:
    check, query = dns_check()
    check.receive(reply(query, rcode=rcode), 0.2)
    failed = failure_of(check)
    assert (failed.failure, failed.detail) == (Failure.PROTOCOL, f"the resolver answered {rcode}")
    assert_finished_and_deaf(check, 0.3)


def test_dns_strays_are_ignored_until_the_answer() -> None:
    check, query = dns_check()
    other_question = b"\x05other\x04test\x00" + struct.pack("!HH", 1, 1)
    strays = [
        b"",
        b"\x5a",
        b"not dns at all, however long it goes on",
        query,  # our own query reflected: not a response
        reply(query, response=False),
        reply(query, query_id=QUERY_ID ^ 1),  # an off-path guess at the id
        reply(query, question=other_question),
        reply(query, query_id=QUERY_ID ^ 1, rcode="SERVFAIL"),  # not ours: no verdict either
    ]
    for now, stray in enumerate(strays, start=1):
        check.receive(stray, float(now))
        assert drain(check) == [] and not check.finished
    assert check.ignored == len(strays)
    assert check.data_to_send(10.0) == []  # nothing is re-sent: the driver's deadline decides
    check.receive(reply(query, addresses=(bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))), 11.0)
    assert drain(check) == [StageCompleted("answer"), Completed("NOERROR, 2 records")]


def test_dns_silence_is_a_timeout() -> None:
    check, _ = dns_check()
    assert check.timer() is None
    assert check.timed_out().failure is Failure.TIMEOUT


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """A CA (PEM) and a server certificate and key it issued for SERVER_NAME."""
    ca = CertificateAuthority.create()
    cert, key = ca.issue(SERVER_NAME, server=True, sans=(SERVER_NAME,)).write(
        tmp_path_factory.mktemp("tls"), "server"
    )
    return ca.cert, cert, key


class MemoryTlsServer:
    """OpenSSL's server side on memory BIOs: the test moves the records between the two ends."""

    def __init__(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=True)

    def answer(self, records: bytes) -> bytes:
        self._in.write(records)
        # SSLError: the client rejected us, and the alert it sent says so.
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
            self._ssl.do_handshake()
        return self._out.read()


def tls_check(ca: str, server_name: str = SERVER_NAME) -> TlsCheck:
    check = TlsCheck(ssl.create_default_context(cadata=ca), server_name)
    assert check.stages == ("tls",)
    return check


def converse(check: TlsCheck, server: MemoryTlsServer) -> list[Event]:
    """Carry records both ways until the check has an event; the events, in order."""
    check.start(0.0)
    for now in range(1, 10):
        records = b"".join(check.data_to_send(float(now)))
        if events := drain(check):
            return events
        check.receive(server.answer(records), float(now))
    raise AssertionError("the TLS handshake never ended")


def test_tls_handshake_with_a_trusted_certificate_completes(
    pki: tuple[str, Path, Path],
) -> None:
    ca, cert, key = pki
    events = converse(tls_check(ca), MemoryTlsServer(cert, key))
    not_after = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    assert events[:2] == [CertificateVerified(not_after.timestamp()), StageCompleted("tls")]
    assert isinstance(events[2], Completed) and events[2].detail.startswith("TLSv1.")


@pytest.mark.parametrize("wrong", ["ca", "name"])
def test_tls_certificate_not_verified_is_tls_cert(pki: tuple[str, Path, Path], wrong: str) -> None:
    ca, cert, key = pki
    if wrong == "ca":
        check = tls_check(CertificateAuthority.create().cert)
    else:
        check = tls_check(ca, "other.vpnwatch.test")
    [failed] = converse(check, MemoryTlsServer(cert, key))
    assert isinstance(failed, Failed) and failed.failure is Failure.TLS_CERT, failed
    assert failed.detail.startswith("server certificate:")
    assert_finished_and_deaf(check, 20.0)


def test_tls_client_hello_is_sent_at_start() -> None:
    check = tls_check(CertificateAuthority.create().cert)
    check.start(0.0)
    [hello] = check.data_to_send(0.0)
    assert hello[:1] == b"\x16" and hello[5] == 1  # a handshake record holding a ClientHello
    assert drain(check) == [] and not check.finished
    assert check.timer() is None
    assert check.timed_out().failure is Failure.TIMEOUT


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"\x15\x03\x03\x00\x02\x02\x28",  # a fatal handshake_failure alert
    ],
    ids=["http", "alert"],
)
def test_tls_answer_that_is_not_a_handshake_is_tls(answer: bytes) -> None:
    check = tls_check(CertificateAuthority.create().cert)
    check.start(0.0)
    check.data_to_send(0.0)
    check.receive(answer, 0.5)
    assert failure_of(check).failure is Failure.TLS
    assert_finished_and_deaf(check, 1.0)


def test_tls_close_mid_handshake_is_eof() -> None:
    check = tls_check(CertificateAuthority.create().cert)
    check.start(0.0)
    check.receive(b"", 0.5)
    assert failure_of(check).failure is Failure.EOF
