"""The tunnel test on a simulated path: time moves by hand, the far end is :func:`ip.answer`."""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from scapy.layers.inet import ICMP, IP, IPerror

from tests.machines import Clear, drain
from vpnwatch.protocols import ip
from vpnwatch.protocols.machine import (
    Completed,
    Failed,
    MachineBase,
    StageCompleted,
    TunnelMeasured,
)
from vpnwatch.protocols.tunnel import Chain, TunnelTest
from vpnwatch.quality import Thresholds, TrainPlan
from vpnwatch.result import Degradation, Failure, TunnelQuality

SOURCE = ipaddress.IPv4Address("198.19.9.2")
SERVER = ipaddress.IPv4Address("198.19.9.1")
PLAN = TrainPlan(echoes=20, burst=8, hold_seconds=2.0, hold_spacing=0.1)


@dataclass
class Path:
    """The far end of a simulated path: answers echoes after ``rtt``, or drops them.

    ``drop(sent_bytes, now)`` decides each echo's fate; ``answer`` makes the reply.
    """

    rtt: Callable[[], float] = lambda: 0.05
    drop: Callable[[int, float], bool] = lambda sent, now: False
    answer: Callable[[bytes], bytes | None] = ip.answer
    sent_bytes: int = 0
    queue: list[tuple[float, int, bytes]] = field(default_factory=list)

    def run(self, machine: MachineBase, until: float = 120.0) -> list[object]:
        now, events, order = 0.0, [], 0
        machine.start(now)
        while not machine.finished and now < until:
            for datagram in machine.data_to_send(now):
                self.sent_bytes += len(datagram)
                if not self.drop(self.sent_bytes, now) and (reply := self.answer(datagram)):
                    order += 1
                    heapq.heappush(self.queue, (now + self.rtt(), order, reply))
            events += drain(machine)
            wake = machine.timer()
            arrival = self.queue[0][0] if self.queue else None
            if arrival is not None and (wake is None or arrival <= wake):
                now, _, reply = heapq.heappop(self.queue)
                machine.receive(reply, now)
            elif wake is not None:
                now = max(now, wake)
                machine.handle_timer(now)
            else:
                break
        return events + drain(machine)


def tunnel_test(plan: TrainPlan = PLAN, seed: int = 1) -> TunnelTest:
    draws = random.Random(seed)
    return TunnelTest(Clear(), SOURCE, SERVER, plan, random_bytes=draws.randbytes)


def measured(events: list[object]) -> TunnelQuality:
    (found,) = [event.quality for event in events if isinstance(event, TunnelMeasured)]
    return found


def test_a_clean_path_passes_every_phase() -> None:
    events = Path().run(tunnel := tunnel_test())
    assert isinstance(events[0], StageCompleted) and events[0].stage == "data"
    assert isinstance(events[-1], Completed)
    quality = measured(events)
    assert (quality.train_sent, quality.train_received, quality.loss) == (20, 20, 0.0)
    assert quality.rtts == pytest.approx((0.05,) * 20)
    assert not quality.cut and quality.goodput is not None and quality.goodput > 8 * 1028 / 0.06
    assert dict(quality.sent) == {"train": 20, "burst": 8, "hold": 21}
    assert Thresholds().judge(quality) == ()
    assert tunnel.ignored == 0


def test_nothing_coming_back_fails_after_the_train_without_the_other_phases() -> None:
    events = Path(drop=lambda sent, now: True).run(tunnel := tunnel_test())
    assert isinstance(events[-1], Failed) and events[-1].failure is Failure.TIMEOUT
    assert "none of 20 echoes to 198.19.9.1" in events[-1].detail
    assert dict(measured(events).sent) == {"train": 20, "burst": 0, "hold": 0}
    assert tunnel.finished


def test_an_unreachable_inside_the_tunnel_is_unreachable() -> None:
    def unreachable(packet: bytes) -> bytes:
        return bytes(
            IP(src="198.19.9.254", dst=str(SOURCE)) / ICMP(type=3, code=1) / IPerror(packet[:28])
        )

    events = Path(answer=unreachable).run(tunnel_test())
    assert isinstance(events[-1], Failed) and events[-1].failure is Failure.UNREACHABLE
    assert "198.19.9.254 inside the tunnel says 198.19.9.1 is unreachable" in events[-1].detail


def test_replies_that_are_not_ours_are_ignored() -> None:
    def wrong_payload(packet: bytes) -> bytes | None:
        parsed = ip.parse(packet)
        assert isinstance(parsed, ip.Echo)
        return ip.echo_reply(
            ip.Echo(
                parsed.source,
                parsed.destination,
                parsed.identifier,
                parsed.sequence,
                b"x" + parsed.payload[1:],
                False,
            )
        )

    events = Path(answer=wrong_payload).run(tunnel := tunnel_test())
    assert isinstance(events[-1], Failed) and tunnel.ignored == 20


@pytest.mark.parametrize("loss", [0.1, 0.3])
def test_measured_loss_lies_in_the_binomial_band(loss: float) -> None:
    draws = random.Random(loss)
    plan = TrainPlan(echoes=400, spacing=0.01, burst=0, hold_seconds=0)
    quality = measured(Path(drop=lambda sent, now: draws.random() < loss).run(tunnel_test(plan)))
    sigma = (loss * (1 - loss) / 400) ** 0.5
    assert quality.loss is not None and abs(quality.loss - loss) < 3 * sigma
    assert Degradation.LOSS in Thresholds(loss=0.05).judge(quality)


def test_a_cut_after_some_bytes_is_a_cut() -> None:
    quality = measured(Path(drop=lambda sent, now: sent > 20_000).run(tunnel_test()))
    assert quality.cut and quality.held_bytes < 20_000
    assert Thresholds().judge(quality) == (Degradation.CUT,)


def test_a_cut_after_some_seconds_is_a_cut() -> None:
    quality = measured(Path(drop=lambda sent, now: now > 3.0).run(tunnel_test()))
    assert quality.cut and quality.held_seconds < 3.1
    assert Degradation.CUT in Thresholds().judge(quality)


def test_random_loss_in_the_hold_is_not_a_cut() -> None:
    for seed in range(20):
        lose = random.Random(seed).random
        quality = measured(
            Path(drop=lambda sent, now, lose=lose: lose() < 0.1).run(tunnel_test(seed=seed))
        )
        assert not quality.cut, seed


def test_jitter_and_slow_round_trips_are_seen() -> None:
    draws = random.Random(3)
    quality = measured(Path(rtt=lambda: 0.2 + draws.uniform(0, 0.4)).run(tunnel_test()))
    assert quality.jitter is not None and quality.jitter > 0.1
    assert Thresholds(rtt=0.3).judge(quality) == (Degradation.RTT, Degradation.JITTER)


def test_a_policer_starves_the_burst() -> None:
    """About 2 kB/s: the train's small echoes pass, the burst's do not, even sent again."""
    budget = {"tokens": 2048.0, "at": 0.0}

    def police(sent: int, now: float) -> bool:
        budget["tokens"] = min(2048.0, budget["tokens"] + (now - budget["at"]) * 2048)
        budget["at"] = now
        size = 1028 if now > 1.8 else 84
        if budget["tokens"] < size:
            return True
        budget["tokens"] -= size
        return False

    quality = measured(Path(drop=police).run(tunnel_test()))
    assert quality.goodput is not None and quality.goodput < 8000
    assert Degradation.GOODPUT in Thresholds().judge(quality)


def test_the_echo_identifier_and_payload_come_from_the_injected_randomness() -> None:
    first, second = tunnel_test(seed=5), tunnel_test(seed=5)
    first.start(0.0)
    second.start(0.0)
    assert first.data_to_send(0.0) == second.data_to_send(0.0)
    assert tunnel_test(seed=6).identifier != first.identifier


class Handshake(MachineBase):
    stages = ("handshake",)

    def start(self, now: float) -> None:
        super().start(now)
        self._send(b"hello")

    def receive(self, data: bytes, now: float) -> None:
        self._emit(StageCompleted("handshake"))
        self._complete("verified")


def test_a_chain_runs_the_test_once_the_handshake_completes() -> None:
    chain = Chain(Handshake(), lambda done: tunnel_test(), TunnelTest.stages)
    assert chain.stages == ("handshake", "data")
    chain.start(0.0)
    assert chain.data_to_send(0.0) == [b"hello"] and chain.timer() is None
    chain.receive(b"welcome", 0.1)
    assert [e for e in drain(chain)] == [StageCompleted("handshake")]
    assert chain.second is not None and len(chain.data_to_send(0.1)) == 1  # the first echo
    assert chain.timer() == pytest.approx(0.2)
    assert chain.input_budget > 1024
