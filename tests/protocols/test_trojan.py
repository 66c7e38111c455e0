"""Trojan's request, and how its machine reads answers (over a TLS layer stand-in)."""

from __future__ import annotations

from tests.machines import drain
from vpnwatch.protocols.layers.stack import Layer, LayerStack
from vpnwatch.protocols.machine import Completed, Failed
from vpnwatch.protocols.relayed import Destination
from vpnwatch.protocols.trojan import TrojanClient, password_line
from vpnwatch.result import Failure


def test_the_password_line_is_the_hex_sha224() -> None:
    # hashlib.sha224(b"password"), as trojan's server configuration documents it
    assert password_line("password") == b"d63dc919e201d7bc4c825630d2cf25fdc93d4b2f0d46706d29038d01"


class Clear(Layer):
    """A layer that proves ``tls`` at once and passes bytes through: the machine's view of TLS."""

    stages = ("tls",)

    def open(self) -> None:
        self._become_ready("tls")

    def receive(self, data: bytes) -> bytes:
        return data

    def _wrap(self, payload: bytes) -> None:
        self._down(payload)


def client(url: str) -> TrojanClient:
    machine = TrojanClient("pw", Destination.parse(url), LayerStack([Clear()]), random_bytes=bytes)
    machine.start(0.0)
    return machine


def test_the_request_is_hash_crlf_connect_address_crlf_payload() -> None:
    machine = client("http://198.18.0.80/generate_204")
    request = b"".join(machine.data_to_send(0.0))
    assert request.startswith(
        password_line("pw") + b"\r\n\x01\x01\xc6\x12\x00\x50\x00\x50\r\nGET /generate_204 "
    )


def test_the_destinations_answer_is_success() -> None:
    machine = client("http://198.18.0.80/generate_204")
    machine.receive(b"HTTP/1.1 204 No Content\r\n\r\n", 1.0)
    assert isinstance(drain(machine)[-1], Completed)


def test_the_fallback_site_is_a_refused_password() -> None:
    for url, answer in [
        ("http://198.18.0.80/generate_204", b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        ("echo://198.18.0.80:7", b"HTTP/1.1 200 OK\r\n\r\n<html>"),
    ]:
        machine = client(url)
        machine.receive(answer, 1.0)
        failed = drain(machine)[-1]
        assert isinstance(failed, Failed) and failed.failure == Failure.AUTH, failed
        assert "fallback" in failed.detail


def test_another_status_from_the_destination_is_protocol() -> None:
    machine = client("http://198.18.0.80/generate_204")
    machine.receive(b"HTTP/1.1 404 Not Found\r\n\r\n", 1.0)
    failed = drain(machine)[-1]
    assert isinstance(failed, Failed) and failed.failure == Failure.PROTOCOL


def test_a_close_without_an_answer_is_eof() -> None:
    machine = client("echo://198.18.0.80:7")
    machine.receive(b"", 1.0)
    failed = drain(machine)[-1]
    assert isinstance(failed, Failed) and failed.failure == Failure.EOF
