"""The DNS control against answers captured from the lab's real dnsmasq (tests/vectors/dns.json).

Regenerate with ``python -m tests.vectors.capture_dns`` (root).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.machines import drain
from vpnwatch.protocols.controls import DnsCheck
from vpnwatch.protocols.machine import Completed, Event, Failed, StageCompleted
from vpnwatch.result import Failure

CAPTURES = {
    c["name"]: c
    for c in json.loads(Path(__file__).parents[1].joinpath("vectors/dns.json").read_text())[
        "captures"
    ]
}


def replay(name: str, answer: bytes | None = None) -> tuple[DnsCheck, list[Event]]:
    capture = CAPTURES[name]
    check = DnsCheck(capture["name"], capture["record_type"], query_id=capture["query_id"])
    check.start(0.0)
    assert check.data_to_send(0.0) == [bytes.fromhex(capture["query"])]  # byte for byte
    check.receive(bytes.fromhex(capture["answer"]) if answer is None else answer, 0.01)
    return check, drain(check)


def test_the_served_name_is_answered():
    _, events = replay("vpnwatch.test")
    assert events == [StageCompleted("answer"), Completed("NOERROR, 1 records")]


def test_a_resolver_that_refuses_is_a_protocol_failure():
    _, events = replay("absent.invalid")  # dnsmasq has no upstream here: it answers REFUSED
    assert events == [Failed(Failure.PROTOCOL, "the resolver answered REFUSED")]


@pytest.mark.parametrize("offset", [0, 1])  # the query id, either byte
def test_an_answer_under_another_id_is_ignored(offset: int):
    answer = bytearray.fromhex(CAPTURES["vpnwatch.test"]["answer"])
    answer[offset] ^= 0xFF
    check, events = replay("vpnwatch.test", bytes(answer))
    assert events == [] and not check.finished and check.ignored == 1
