"""The reliability layer with time moved by hand: retransmission, ACKs, ordering, duplicates."""

from __future__ import annotations

from vpnwatch.protocols.openvpn.packets import Opcode
from vpnwatch.protocols.openvpn.reliable import SEND_WINDOW, Message, ReliableLayer

CONTROL = Opcode.CONTROL_V1


def test_messages_are_numbered_from_zero_and_sent_once_until_due() -> None:
    layer = ReliableLayer(initial_retransmit=2.0)
    first = layer.queue(CONTROL, b"a")
    second = layer.queue(CONTROL, b"b")
    assert (first.message_id, second.message_id) == (0, 1)
    assert layer.due(0.0) == [first, second]
    assert layer.due(1.9) == []
    assert layer.timer() == 2.0


def test_retransmission_backs_off_exponentially() -> None:
    layer = ReliableLayer(initial_retransmit=2.0)
    message = layer.queue(CONTROL, b"a")
    sent_at = [now for now in (0.0, 1.0, 2.0, 3.0, 5.9, 6.0, 13.9, 14.0) if layer.due(now)]
    assert sent_at == [0.0, 2.0, 6.0, 14.0]
    layer.acknowledge((message.message_id,))
    assert layer.due(100.0) == []
    assert layer.timer() is None
    assert layer.all_acknowledged


def test_only_a_window_of_messages_is_in_flight() -> None:
    layer = ReliableLayer()
    messages = [layer.queue(CONTROL, bytes([i])) for i in range(SEND_WINDOW + 2)]
    assert layer.due(0.0) == messages[:SEND_WINDOW]
    layer.acknowledge((0, 1))
    assert layer.due(0.1) == messages[SEND_WINDOW:]


def test_out_of_order_messages_are_delivered_in_order() -> None:
    layer = ReliableLayer()
    layer.receive(Message(1, CONTROL, b"second"))
    assert layer.deliver() == []
    layer.receive(Message(0, CONTROL, b"first"))
    assert [m.payload for m in layer.deliver()] == [b"first", b"second"]
    assert layer.take_acks(8) == (1, 0)


def test_duplicates_are_acked_again_but_delivered_once() -> None:
    layer = ReliableLayer()
    layer.receive(Message(0, CONTROL, b"x"))
    assert len(layer.deliver()) == 1
    assert layer.take_acks(8) == (0,)
    layer.receive(Message(0, CONTROL, b"x"))  # our ACK was lost; the peer resent
    assert layer.deliver() == []
    assert layer.take_acks(8) == (0,)


def test_messages_far_ahead_are_dropped_unacked() -> None:
    layer = ReliableLayer()
    layer.receive(Message(50, CONTROL, b"x"))
    assert not layer.acks_owed
    assert layer.deliver() == []


def test_acks_are_taken_in_batches() -> None:
    layer = ReliableLayer()
    for i in range(6):
        layer.receive(Message(i, CONTROL, b""))
    assert layer.take_acks(4) == (0, 1, 2, 3)
    assert layer.take_acks(4) == (4, 5)
    assert not layer.acks_owed
