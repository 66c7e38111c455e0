"""The Tor link machine replaying the real tor bridge's cells (``tor.json``), and each way the
relay's side of that conversation can go wrong, made by changing the relay's own cells."""

from __future__ import annotations

import struct

import pytest

from tests.machines import drain
from tests.vectors.tor import (
    CERTS,
    CREATED_FAST,
    DESTROY,
    NETINFO,
    VERSIONS,
    RawCell,
    captures,
    join_cells,
    join_certs,
    split_cells,
)
from vpnwatch.protocols.machine import Completed, Failed, StageCompleted
from vpnwatch.protocols.tor.link import TorLinkClient
from vpnwatch.result import Failure

VPADDING, PADDING = 128, 0


def capture_parts() -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The client's VERSIONS, the relay's handshake cells, our NETINFO + CREATE_FAST, the relay's
    CREATED_FAST and our DESTROY, as captured."""
    (_, versions), (_, handshake), (_, create), (_, created), (_, destroy) = captures()[
        "link"
    ].transcript
    return versions, handshake, create, created, destroy


def started(**changes: object) -> TorLinkClient:
    client = captures()["link"].client(**changes)
    client.start(0.0)
    assert client.data_to_send(0.0) == [capture_parts()[0]]
    return client


def test_replay_sends_the_captured_bytes_and_completes() -> None:
    _, handshake, create, created, destroy = capture_parts()
    client = started()
    client.receive(handshake, 1.0)
    assert b"".join(client.data_to_send(1.0)) == create
    assert drain(client) == [StageCompleted("link")]
    client.receive(created, 2.0)
    assert client.data_to_send(2.0) == [destroy]
    stage, done = drain(client)
    assert stage == StageCompleted("data") and isinstance(done, Completed)
    capture = captures()["link"]
    assert f"relay {capture.fingerprint} (Ed25519 " in done.detail
    assert "link protocol 5" in done.detail and client.finished


def test_the_relays_bytes_in_any_pieces() -> None:
    _, handshake, create, created, destroy = capture_parts()
    client = started()
    sent = []
    for index, byte in enumerate(handshake + created):
        client.receive(bytes([byte]), float(index))
        sent += client.data_to_send(float(index))
    assert b"".join(sent) == create + destroy
    assert isinstance(drain(client)[-1], Completed)


def relay_cells() -> list[RawCell]:
    return split_cells(capture_parts()[1] + capture_parts()[3])


def replay(cells: list[RawCell], **changes: object) -> list[object]:
    client = started(**changes)
    client.receive(join_cells(cells), 1.0)
    events: list[object] = drain(client)
    if client.finished:
        client.receive(b"more", 2.0)  # finished: whatever follows is ignored
        assert drain(client) == []
    return events


def failure(cells: list[RawCell], **changes: object) -> Failed:
    last = replay(cells, **changes)[-1]
    assert isinstance(last, Failed), last
    return last


def replaced(command: int, payload: bytes) -> list[RawCell]:
    return [
        RawCell(cell.circuit, command, payload) if cell.command == command else cell
        for cell in relay_cells()
    ]


def test_padding_anywhere_is_ignored() -> None:
    cells = relay_cells()
    padded = [cells[0], RawCell(0, VPADDING, b"xyz")]
    for cell in cells[1:]:
        padded += [cell, RawCell(0, PADDING, b"")]
    assert isinstance(replay(padded)[-1], Completed)


def test_cells_for_other_circuits_are_ignored() -> None:
    cells = relay_cells()
    stray = RawCell(0x80000000 | 7, DESTROY, b"\x01")
    assert isinstance(replay([*cells[:-1], stray, cells[-1]])[-1], Completed)


def test_another_fingerprint_fails_at_link_as_a_certificate_failure() -> None:
    client = started(fingerprint="AB" * 20)
    client.receive(capture_parts()[1], 1.0)
    [failed] = drain(client)
    assert isinstance(failed, Failed) and failed.failure is Failure.TLS_CERT
    assert "not the bridge line's ABAB" in failed.detail
    assert client.data_to_send(1.0) == []  # no NETINFO, no circuit to an impostor


def test_a_certs_cell_with_a_broken_signature_is_a_certificate_failure() -> None:
    certs = captures()["link"].certs()
    certs[7] = certs[7][:-1] + bytes([certs[7][-1] ^ 1])
    failed = failure(replaced(CERTS, join_certs(certs)))
    assert failed.failure is Failure.TLS_CERT and "cross-certificate" in failed.detail


def test_a_tls_certificate_the_certs_do_not_bind_is_a_certificate_failure() -> None:
    other = captures()["link"].certs()[2]
    assert failure(relay_cells(), tls_certificate=other).failure is Failure.TLS_CERT


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (replaced(VERSIONS, struct.pack(">H", 3)), "none of"),
        (replaced(CERTS, b""), "CERTS cell is empty"),
        ([relay_cells()[0], relay_cells()[3]], "expected CERTS, the relay sent NETINFO"),
        ([RawCell(0, NETINFO, b"")], "expected VERSIONS"),
        ([*relay_cells()[:-1], RawCell(0x80000000, 200, b"")], None),
        (
            replaced(NETINFO, bytes(4) + b"\x09\xff" + bytes(255) + b"\xff\x09\xff"),
            "inside an address",
        ),
    ],
    ids=["versions", "empty-certs", "no-certs", "no-versions", "stray-variable", "netinfo"],
)
def test_malformed_or_out_of_order_cells_are_protocol_failures(
    cells: list[RawCell], message: str | None
) -> None:
    events = replay(cells)
    if message is None:  # an unknown command on another circuit: ignored, still waiting
        assert events == [StageCompleted("link")]
        return
    last = events[-1]
    assert isinstance(last, Failed) and last.failure is Failure.PROTOCOL, last
    assert message in last.detail


def test_a_created_fast_that_does_not_answer_ours_is_a_protocol_failure() -> None:
    cells = relay_cells()
    created = cells[-1]
    assert created.command == CREATED_FAST
    wrong = RawCell(created.circuit, CREATED_FAST, created.payload[:20] + bytes(20))
    failed = failure([*cells[:-1], wrong])
    assert failed.failure is Failure.PROTOCOL and "key hash" in failed.detail


def test_a_relay_that_destroys_our_circuit_fails_the_data_stage() -> None:
    cells = relay_cells()
    destroy = RawCell(cells[-1].circuit, DESTROY, b"\x05")
    events = replay([*cells[:-1], destroy])
    assert events[0] == StageCompleted("link")
    assert isinstance(events[-1], Failed) and events[-1].failure is Failure.PROTOCOL
    assert "DESTROY reason 5" in events[-1].detail


@pytest.mark.parametrize(
    ("cells", "waiting"),
    [(0, "VERSIONS"), (1, "CERTS"), (3, "NETINFO"), (4, "CREATED_FAST")],
)
def test_silence_and_close_say_what_was_missing(cells: int, waiting: str) -> None:
    client = started()
    client.receive(join_cells(relay_cells()[:cells]), 1.0) if cells else None
    drain(client)
    timed_out = client.timed_out()
    assert timed_out.failure is Failure.TIMEOUT and waiting in timed_out.detail
    client.receive(b"", 2.0)
    [closed] = drain(client)
    assert isinstance(closed, Failed) and closed.failure is Failure.EOF
    assert waiting in closed.detail
