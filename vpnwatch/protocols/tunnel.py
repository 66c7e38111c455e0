"""Tunnel tests: after a verified handshake, carry a train of echoes through the tunnel, sans-IO.

The contract a data plane implements is :class:`Tunnel`: ``seal`` turns one inner IP packet into
wire bytes, ``open`` turns wire bytes into the inner packets that authenticate (dropping the rest,
never raising for what the peer sent), ``flush`` returns anything else the tunnel must send (acks,
keepalives). Everything else is here, once for every protocol:

- :class:`TunnelTest`, a machine on the shared contract whose one stage is ``data``: it sends ICMP
  or ICMPv6 echoes (:mod:`vpnwatch.protocols.ip`) from the client's tunnel address to an address
  inside the tunnel, in three phases bounded by a :class:`~vpnwatch.quality.TrainPlan`:

  1. the **train**: echoes spaced apart; loss, round trips and jitter;
  2. the **burst**: echoes back to back, the lost ones sent again after a retransmission timeout
     (twice the slowest round trip of the train, at least :data:`MIN_RTO`), until all came back
     or the phase's time ran out: goodput, in bytes delivered per second;
  3. the **hold**: echoes paced over seconds or bytes; when replies stop for good before the end
     (a run of losses the train's loss rate makes improbable), the session was **cut**.

  ``data`` completes with the first reply that matches an echo we sent: same addresses, our
  identifier, a sequence number we used and its payload, byte for byte. When nothing comes back by
  the end of the train's wait, the test fails (``timeout``, or ``unreachable`` when a router inside
  the tunnel said so) without running the other phases. Before it completes or fails it emits
  :class:`TunnelMeasured` with a :class:`~vpnwatch.result.TunnelQuality`; the driver puts it on the
  Result and judges it against the target's thresholds.

- :class:`Chain`, which runs a handshake machine and then, on its ``Completed``, the tunnel test
  built from it, as one machine: a protocol's tunnel probe is
  ``Chain(handshake, lambda done: TunnelTest(MyTunnel(done...), source, destination, plan))``.

Every random value (the echo identifier, the payload bytes) comes from ``random_bytes``.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from vpnwatch.protocols.ip import Echo, IcmpError, IPAddress, echo_request, parse
from vpnwatch.protocols.machine import (
    Completed,
    Failed,
    Machine,
    MachineBase,
    StageCompleted,
    TunnelMeasured,
)
from vpnwatch.quality import MAX_BURST_ROUNDS, TrainPlan
from vpnwatch.result import Failure, TunnelQuality

#: The burst's retransmission timeout is never shorter than this (seconds).
MIN_RTO = 0.1
#: A hold ends in a cut when its last echoes were lost in a run this improbable at the train's
#: loss rate (and never fewer than :data:`MIN_CUT_RUN` of them).
CUT_IMPROBABILITY = 1e-3
MIN_CUT_RUN = 3
#: Inputs a tunnel test may hand its machine per echo it plans (replies, duplicates, noise).
INPUTS_PER_ECHO = 4


class Tunnel(Protocol):
    """A verified session's data plane, as the tunnel test uses it."""

    def seal(self, packet: bytes) -> list[bytes]:
        """Wire bytes (datagrams, or stream chunks in order) carrying one inner IP packet."""
        ...

    def open(self, data: bytes) -> list[bytes]:
        """The inner IP packets in ``data`` that authenticate; the rest is dropped, not raised."""
        ...

    def flush(self) -> list[bytes]:
        """Wire bytes the tunnel itself must send now (acks, keepalives); usually none."""
        ...


class Phase(enum.StrEnum):
    TRAIN = "train"
    BURST = "burst"
    HOLD = "hold"


class _Step(enum.Enum):
    TRAIN = enum.auto()
    AWAIT_FIRST = enum.auto()  # the train is sent and nothing came back yet
    BURST = enum.auto()
    HOLD = enum.auto()
    LINGER = enum.auto()


@dataclass(slots=True)
class _Sent:
    phase: Phase
    size: int  # the inner packet's bytes
    payload: int  # the payload's bytes
    at: float
    slot: int = -1  # the burst's slot (resends share it)
    answered_at: float | None = None


@dataclass(slots=True)
class _Tally:
    sent: dict[Phase, int] = field(default_factory=lambda: dict.fromkeys(Phase, 0))
    received: dict[Phase, int] = field(default_factory=lambda: dict.fromkeys(Phase, 0))
    bytes_sent: int = 0
    bytes_received: int = 0


class TunnelTest(MachineBase):
    """Echoes through a verified tunnel, on the machine contract (stage ``data``)."""

    stages: tuple[str, ...] = ("data",)

    def __init__(
        self,
        tunnel: Tunnel,
        source: IPAddress,
        destination: IPAddress,
        plan: TrainPlan,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        if source.version != destination.version:
            raise ValueError("the tunnel test's addresses must be of one IP version")
        self.tunnel = tunnel
        self.source = source
        self.destination = destination
        self.plan = plan
        self.input_budget = INPUTS_PER_ECHO * plan.packets + 64
        self.identifier = int.from_bytes(random_bytes(2), "big")
        longest = max(plan.payload, plan.burst_payload, plan.hold_payload)
        self._pad = random_bytes(longest)
        self._sent: dict[int, _Sent] = {}
        self._unanswered = 0
        self._tally = _Tally()
        self._step = _Step.TRAIN
        self._next_at: float | None = None
        self._started_at = 0.0
        self._phase_at = 0.0
        self._hold_sent = 0
        self._hold_bytes = 0
        self._burst_undelivered: set[int] = set()
        self._burst_bytes_delivered = 0
        self._burst_rounds = 0
        self._resend_at = 0.0
        self._burst_done_at = 0.0
        self._goodput: float | None = None
        self._last_reply_at: float | None = None
        self.icmp_errors: list[IcmpError] = []
        self.ignored = 0

    # -- the machine contract ---------------------------------------------------------------

    def start(self, now: float) -> None:
        super().start(now)
        self._started_at = self._phase_at = now
        self._advance(now)

    def timer(self) -> float | None:
        return None if self.finished else self._next_at

    def handle_timer(self, now: float) -> None:
        if not self.finished:
            self._advance(now)

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        for packet in self.tunnel.open(data):
            self._take(packet, now)
        self._send_all(self.tunnel.flush())
        self._advance(now)

    def timed_out(self) -> Failed:
        return self._nothing_came_back()

    # -- phases -----------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        """Send what is due and move through the phases; set the next wake-up."""
        while not self.finished:
            wake = self._step_once(now)
            if wake is not None:
                self._next_at = wake
                return

    def _step_once(self, now: float) -> float | None:
        """Do one step's due work: the time to wake up, or None to go on to the next step."""
        plan = self.plan
        if self._step is _Step.TRAIN:
            while self._tally.sent[Phase.TRAIN] < plan.echoes:
                due = self._phase_at + self._tally.sent[Phase.TRAIN] * plan.spacing
                if now < due:
                    return due
                self._echo(Phase.TRAIN, plan.payload, now)
            self._enter(_Step.AWAIT_FIRST, now)
            return None
        if self._step is _Step.AWAIT_FIRST:
            if self._last_reply_at is None:
                if now < self._phase_at + plan.linger:
                    return self._phase_at + plan.linger
                self._conclude(now)
                return None
            self._enter(_Step.BURST, now)
            self._send_burst(now, range(plan.burst))
            return None
        if self._step is _Step.BURST:
            deadline = self._phase_at + plan.burst_seconds
            if self._burst_undelivered and now < deadline:
                if self._burst_rounds >= MAX_BURST_ROUNDS:
                    return deadline
                if now >= self._resend_at:
                    self._send_burst(now, sorted(self._burst_undelivered))
                return min(deadline, self._resend_at)
            if plan.burst:
                elapsed = (now if self._burst_undelivered else self._burst_done_at) - self._phase_at
                self._goodput = self._burst_bytes_delivered / max(elapsed, 1e-6)
            self._enter(_Step.HOLD, now)
            return None
        if self._step is _Step.HOLD:
            while self._hold_sent < plan.hold_echoes and (
                not plan.hold_bytes or self._hold_bytes < plan.hold_bytes
            ):
                due = self._phase_at + self._hold_sent * plan.hold_spacing
                if now < due:
                    return due
                self._echo(Phase.HOLD, plan.hold_payload, now)
                self._hold_sent += 1
                self._hold_bytes += plan.hold_payload
            self._enter(_Step.LINGER, now)
            return None
        # LINGER: late replies may still come; end early once every echo is answered.
        end = self._phase_at + plan.linger
        if now < end and self._unanswered:
            return end
        self._conclude(now)
        return None

    def _enter(self, step: _Step, now: float) -> None:
        self._step = step
        self._phase_at = now

    def _send_burst(self, now: float, slots: range | list[int]) -> None:
        if not slots:
            return
        self._burst_rounds += 1
        for slot in slots:
            self._echo(Phase.BURST, self.plan.burst_payload, now, slot=slot)
            self._burst_undelivered.add(slot)
        rtts = self._train_rtts()
        self._resend_at = now + max(MIN_RTO, 2 * max(rtts, default=MIN_RTO))

    def _echo(self, phase: Phase, payload: int, now: float, *, slot: int = -1) -> None:
        sequence = len(self._sent)
        packet = echo_request(
            self.source, self.destination, self.identifier, sequence, self._pad[:payload]
        )
        self._sent[sequence] = _Sent(phase, len(packet), payload, now, slot)
        self._unanswered += 1
        self._tally.sent[phase] += 1
        self._tally.bytes_sent += len(packet)
        self._send_all(self.tunnel.seal(packet))

    def _send_all(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._send(chunk)

    # -- replies ----------------------------------------------------------------------------

    def _take(self, packet: bytes, now: float) -> None:
        parsed = parse(packet)
        if isinstance(parsed, IcmpError):
            if parsed.identifier == self.identifier and parsed.sequence in self._sent:
                self.icmp_errors.append(parsed)
                return
        elif isinstance(parsed, Echo) and self._ours(parsed):
            sent = self._sent[parsed.sequence]
            if sent.answered_at is None:
                self._answered(sent, parsed, now)
            return
        self.ignored += 1

    def _ours(self, echo: Echo) -> bool:
        sent = self._sent.get(echo.sequence)
        return (
            echo.reply
            and sent is not None
            and echo.identifier == self.identifier
            and echo.source == self.destination
            and echo.destination == self.source
            and echo.payload == self._pad[: sent.payload]
        )

    def _answered(self, sent: _Sent, echo: Echo, now: float) -> None:
        sent.answered_at = now
        self._unanswered -= 1
        self._tally.received[sent.phase] += 1
        self._tally.bytes_received += echo.size
        if self._last_reply_at is None:
            self._emit(StageCompleted("data"))
        self._last_reply_at = now
        if sent.phase is Phase.BURST and sent.slot in self._burst_undelivered:
            self._burst_undelivered.discard(sent.slot)
            self._burst_bytes_delivered += sent.size
            if not self._burst_undelivered and self._step is _Step.BURST:
                self._burst_done_at = now

    # -- the end ----------------------------------------------------------------------------

    def _train_rtts(self) -> list[float]:
        return [
            sent.answered_at - sent.at
            for sent in self._sent.values()
            if sent.phase is Phase.TRAIN and sent.answered_at is not None
        ]

    def quality(self) -> TunnelQuality:
        """What the test has measured so far."""
        tally = self._tally
        held = 0.0 if self._last_reply_at is None else self._last_reply_at - self._started_at
        return TunnelQuality(
            train_sent=tally.sent[Phase.TRAIN],
            train_received=tally.received[Phase.TRAIN],
            rtts=tuple(self._train_rtts()),
            goodput=self._goodput,
            held_seconds=held,
            held_bytes=tally.bytes_received,
            cut=self._cut(),
            sent=tuple((phase.value, tally.sent[phase]) for phase in Phase),
            received=tuple((phase.value, tally.received[phase]) for phase in Phase),
            bytes_sent=tally.bytes_sent,
            bytes_received=tally.bytes_received,
        )

    def _cut(self) -> bool:
        """Whether the hold's last echoes were lost in a run the train's loss cannot explain."""
        hold = [sent for sent in self._sent.values() if sent.phase is Phase.HOLD]
        if len(hold) < MIN_CUT_RUN:
            return False
        run = 0
        for sent in reversed(hold):
            if sent.answered_at is not None:
                break
            run += 1
        train = self._tally.sent[Phase.TRAIN]
        loss = 1 - self._tally.received[Phase.TRAIN] / train if train else 0.0
        loss = min(max(loss, 0.01), 0.99)
        needed = max(MIN_CUT_RUN, math.ceil(math.log(CUT_IMPROBABILITY) / math.log(loss)))
        return run >= min(needed, len(hold))

    def _conclude(self, now: float) -> None:
        quality = self.quality()
        self._emit(TunnelMeasured(quality))
        if self._last_reply_at is None:
            failed = self._nothing_came_back()
            self._fail(failed.failure, failed.detail)
            return
        self._complete(_describe(quality))

    def _nothing_came_back(self) -> Failed:
        sent = sum(self._tally.sent.values())
        if self._last_reply_at is not None:
            return Failed(Failure.TIMEOUT, "the tunnel test did not finish")
        to = f"to {self.destination}"
        if self.icmp_errors:
            error = self.icmp_errors[-1]
            what = "unreachable" if error.unreachable else "out of hops"
            return Failed(
                Failure.UNREACHABLE,
                f"{error.source} inside the tunnel says {self.destination} is {what}"
                f" (code {error.code}) for {len(self.icmp_errors)} of {sent} echoes",
            )
        return Failed(Failure.TIMEOUT, f"none of {sent} echoes {to} came back through the tunnel")


def _describe(quality: TunnelQuality) -> str:
    parts = [f"{quality.train_received}/{quality.train_sent} echoes through the tunnel"]
    if (median := quality.rtt_median) is not None:
        parts.append(f"RTT p50 {median * 1000:.1f} ms")
    if quality.goodput is not None:
        parts.append(f"goodput {quality.goodput / 1000:.1f} kB/s")
    if quality.cut:
        parts.append(f"cut after {quality.held_seconds:.1f} s and {quality.held_bytes} bytes")
    return ", ".join(parts)


class Chain(MachineBase):
    """A handshake machine, then the machine ``then`` builds from it once it completed.

    Stages are the first machine's followed by the second's; the first's ``Completed`` is not
    passed on (the probe is not over), every other event is. ``then`` is called with the finished
    first machine, so it can take the session's keys from it.
    """

    def __init__(
        self, first: Machine, then: Callable[[Machine], Machine], second_stages: tuple[str, ...]
    ) -> None:
        super().__init__()
        self.first = first
        self.second: Machine | None = None
        self._then = then
        self.stages = (*first.stages, *second_stages)
        self.input_budget = first.input_budget

    @property
    def current(self) -> Machine:
        return self.second if self.second is not None else self.first

    def start(self, now: float) -> None:
        super().start(now)
        self.first.start(now)
        self._pass_on(now)

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        self.current.receive(data, now)
        self._pass_on(now)

    def data_to_send(self, now: float) -> list[bytes]:
        out = super().data_to_send(now)
        out += self.first.data_to_send(now)
        if self.second is not None:
            out += self.second.data_to_send(now)
        return out

    def timer(self) -> float | None:
        return None if self.finished else self.current.timer()

    def handle_timer(self, now: float) -> None:
        if not self.finished:
            self.current.handle_timer(now)
            self._pass_on(now)

    def timed_out(self) -> Failed:
        return self.current.timed_out()

    def _pass_on(self, now: float) -> None:
        while not self.finished and (event := self.current.next_event()) is not None:
            if isinstance(event, Completed) and self.second is None:
                self._send_all_of(self.first, now)
                self.second = self._then(self.first)
                self.input_budget += self.second.input_budget
                self.second.start(now)
            elif isinstance(event, Completed):
                self._complete(event.detail)
            elif isinstance(event, Failed):
                self._fail(event.failure, event.detail)
            else:
                self._emit(event)

    def _send_all_of(self, machine: Machine, now: float) -> None:
        for chunk in machine.data_to_send(now):
            self._send(chunk)
