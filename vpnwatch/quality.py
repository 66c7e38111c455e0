"""How much a tunnel test sends, how often it runs, and when what it measured counts as degraded.

A tunnel test costs more than a handshake (about a hundred echoes, a few seconds), so it runs on
its own, longer schedule (:class:`TunnelPlan`), and what it sends is bounded in packets, bytes and
time (:class:`TrainPlan`): the defaults cost about 70 KB each way and 10 s per test, small enough
for thousands of targets tested every ten minutes. :class:`Thresholds` turn a
:class:`~vpnwatch.result.TunnelQuality` into the :class:`~vpnwatch.result.Degradation` reasons of
a ``degraded`` verdict; they are set for all targets, per site and per target (the configuration
merges them, the most specific winning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpnwatch.result import Degradation, TunnelQuality

# Built when first used: `vpnwatch check` of a file without a tunnel test never needs them.
_FROZEN = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class TrainPlan(BaseModel):
    """What one tunnel test sends: a train of echoes, a burst, and a hold. All bounded."""

    model_config = _FROZEN

    #: The train: echoes spaced ``spacing`` apart, each with ``payload`` bytes (ping's 56).
    echoes: Annotated[int, Field(ge=1, le=1000)] = 10
    spacing: Annotated[float, Field(ge=0.001, le=10)] = 0.1
    payload: Annotated[int, Field(ge=0, le=1400)] = 56
    #: The burst: ``burst`` echoes of ``burst_payload`` bytes back to back; lost ones are sent
    #: again until all came back or ``burst_seconds`` passed (0 echoes: no goodput measured).
    burst: Annotated[int, Field(ge=0, le=256)] = 16
    burst_payload: Annotated[int, Field(ge=0, le=1400)] = 1000
    burst_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: The hold: an echo of ``hold_payload`` bytes every ``hold_spacing`` until ``hold_seconds``
    #: passed or ``hold_bytes`` were sent, whichever comes first (0 seconds: no hold).
    hold_seconds: Annotated[float, Field(ge=0, le=600)] = 5.0
    hold_bytes: Annotated[int, Field(ge=0, le=10_000_000)] = 65536
    hold_spacing: Annotated[float, Field(ge=0.001, le=10)] = 0.1
    hold_payload: Annotated[int, Field(ge=0, le=1400)] = 1000
    #: How long after its last echo the test still waits for late replies.
    linger: Annotated[float, Field(gt=0, le=30)] = 1.0

    @model_validator(mode="after")
    def _bounded(self) -> TrainPlan:
        if self.packets > MAX_ECHOES:
            raise ValueError(
                f"sends up to {self.packets} echoes (train, burst resent {MAX_BURST_ROUNDS} times,"
                f" hold); at most {MAX_ECHOES}"
            )
        return self

    @property
    def hold_echoes(self) -> int:
        """How many echoes the hold sends at most."""
        if self.hold_seconds == 0:
            return 0
        by_time = int(self.hold_seconds / self.hold_spacing) + 1
        by_bytes = -(-self.hold_bytes // max(self.hold_payload, 1)) if self.hold_bytes else by_time
        return min(by_time, by_bytes)

    @property
    def duration(self) -> float:
        """The longest the test takes after the handshake: its phases and the final wait."""
        hold = self.hold_spacing * max(self.hold_echoes - 1, 0)
        train = self.spacing * (self.echoes - 1)
        return train + self.burst_seconds * (self.burst > 0) + hold + self.linger

    @property
    def packets(self) -> int:
        """The most echoes one test sends: the train, the burst with its resends, the hold."""
        return self.echoes + self.burst * MAX_BURST_ROUNDS + self.hold_echoes


#: The most echoes one test may send: sequence numbers are 16 bits, and a test is a sample.
MAX_ECHOES = 20_000
#: How many times the burst is sent at most: once, then its lost echoes up to this many times.
MAX_BURST_ROUNDS = 8


class Thresholds(BaseModel):
    """Beyond these, a tunnel that carries traffic is degraded. None turns a check off."""

    model_config = _FROZEN

    #: Share of the train's echoes lost (0.1: more than one in ten).
    loss: Annotated[float, Field(ge=0, le=1)] | None = 0.1
    #: Median round trip of the train, seconds.
    rtt: Annotated[float, Field(gt=0, le=60)] | None = 1.0
    #: Mean change of round trip from one echo to the next, seconds.
    jitter: Annotated[float, Field(gt=0, le=60)] | None = 0.1
    #: Bytes per second the burst came through at (8000: 64 kbit/s).
    goodput: Annotated[float, Field(gt=0, le=1e12)] | None = 8000.0

    def judge(self, quality: TunnelQuality) -> tuple[Degradation, ...]:
        """The reasons ``quality`` is degraded, in :class:`Degradation`'s order; empty if none."""
        found: list[Degradation] = []
        loss, rtt, jitter = quality.loss, quality.rtt_median, quality.jitter
        if self.loss is not None and loss is not None and loss > self.loss:
            found.append(Degradation.LOSS)
        if self.rtt is not None and rtt is not None and rtt > self.rtt:
            found.append(Degradation.RTT)
        if self.jitter is not None and jitter is not None and jitter > self.jitter:
            found.append(Degradation.JITTER)
        goodput = quality.goodput
        if self.goodput is not None and goodput is not None and goodput < self.goodput:
            found.append(Degradation.GOODPUT)
        if quality.cut:
            found.append(Degradation.CUT)
        return tuple(found)


class TunnelPlan(BaseModel):
    """A target's tunnel tests: how often, within what time, what they send, what is degraded."""

    model_config = _FROZEN

    #: Seconds between tunnel tests of a target (its handshake probes keep their own interval).
    interval: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    #: Seconds one tunnel test may take, its handshake included.
    timeout: Annotated[float, Field(gt=0, le=3_600)] = 30.0
    # Defaults are our constants, constructed rather than validated, so that a command that keeps
    # them never builds these validators (tests hold them equal to validated ones).
    train: TrainPlan = Field(default_factory=TrainPlan.model_construct)
    thresholds: Thresholds = Field(default_factory=Thresholds.model_construct)

    @model_validator(mode="after")
    def _fits(self) -> TunnelPlan:
        if self.train.duration >= self.timeout:
            raise ValueError(
                f"timeout ({self.timeout:g} s) must exceed what the train, burst, hold and linger"
                f" take ({self.train.duration:g} s), with time left for the handshake"
            )
        if self.timeout > self.interval:
            raise ValueError(
                f"timeout ({self.timeout:g} s) must not exceed interval ({self.interval:g} s)"
            )
        return self


def overridden(plan: TunnelPlan, *overrides: Mapping[str, Any]) -> TunnelPlan:
    """``plan`` with each override applied in turn (nested sections merged key by key), validated
    as a whole; raises :class:`pydantic.ValidationError`."""
    merged = plan.model_dump()
    for override in overrides:
        merged = _merge(merged, override)
    return TunnelPlan.model_validate(merged)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
