"""The one driver: resolve, open a datagram or stream link, and run any protocol machine over it.

A protocol plugs in with a :class:`ProbeSpec`: how to build its machine from a target, optionally
an admission gate its peers require (WireGuard's pacing of one key), and, for a protocol with a
data plane, how to build its tunnel test (its handshake chained to a
:class:`~vpnwatch.protocols.tunnel.TunnelTest`). Everything else is here, once: stage stamps on a
monotonic clock (``resolve``, then ``connect`` on streams, then the machine's own stages), the
timer, the probe's deadline, the mapping of OS errors to failures or local errors, and a tunnel
test's measurements judged against the target's thresholds. Adding a protocol adds no driver code.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from vpnwatch.probes import Probe
from vpnwatch.probes.net import DatagramLink, Link, StreamLink, resolve
from vpnwatch.probes.oserrors import classify, describe
from vpnwatch.protocols.machine import (
    CertificateVerified,
    Completed,
    Failed,
    Machine,
    Redirected,
    StageCompleted,
    TunnelMeasured,
)
from vpnwatch.quality import TrainPlan, TunnelPlan
from vpnwatch.result import Failure, LocalError, LocalReason, Result, Timeline
from vpnwatch.targets.base import TargetBase

T = TypeVar("T", bound=TargetBase)


def _no_gate(target: Any) -> AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()


@dataclass(frozen=True, slots=True)
class ProbeSpec(Generic[T]):
    """What the driver needs to probe one protocol."""

    #: A fresh machine for one probe of the target.
    machine: Callable[[T], Machine]
    #: Entered once the link is up and held until the conversation ends.
    gate: Callable[[T], AbstractAsyncContextManager[None]] = _no_gate
    #: A fresh machine for one tunnel test of the target (its handshake, then echoes through the
    #: tunnel); None when the protocol has no data plane. Called only for targets whose
    #: ``tunnel_ready`` is true.
    tunnel: Callable[[T, TrainPlan], Machine] | None = None

    def probe(self) -> Probe:
        """The probe function the scheduler calls: ``await probe(target, timeout)``, or
        ``await probe(target, timeout, tunnel=plan)`` for a tunnel test."""

        async def probe(target: T, timeout: float, tunnel: TunnelPlan | None = None) -> Result:
            return await drive(self, target, timeout, tunnel)

        return probe


class _Ended(Exception):
    def __init__(self, failed: Failed) -> None:
        self.failed = failed


async def drive(
    spec: ProbeSpec[T], target: T, timeout: float, tunnel: TunnelPlan | None = None
) -> Result:
    """Probe ``target`` once within ``timeout``; a Result for whatever the peer did.

    With a ``tunnel`` plan (and a protocol that has a data plane) the probe is a tunnel test: the
    Result carries what it measured and the plan's thresholds judge whether it is degraded.
    Raises :class:`LocalError` when this host could not carry the probe out.
    """
    result = await _drive(spec, target, timeout, tunnel)
    if tunnel is not None and result.ok and result.tunnel is not None:
        result = replace(result, degraded=tunnel.thresholds.judge(result.tunnel))
    return result


async def _drive(
    spec: ProbeSpec[T], target: T, timeout: float, tunnel: TunnelPlan | None
) -> Result:
    stream = target.transport == "tcp"
    if tunnel is not None and spec.tunnel is not None:
        machine = spec.tunnel(target, tunnel.train)
    else:
        machine = spec.machine(target)
    plan = ("resolve", *(("connect",) if stream else ()), *machine.stages)
    timeline = Timeline(target.name, target.protocol, plan=plan)
    link: Link | None = None
    admitted = False
    try:
        async with asyncio.timeout(timeout):
            kind = socket.SOCK_STREAM if stream else socket.SOCK_DGRAM
            family, address = await resolve(target.host, target.port, kind, target.address_family)
            timeline.reached("resolve")
            link = await (StreamLink if stream else DatagramLink).connect(family, address)
            if stream:
                timeline.reached("connect")
            async with spec.gate(target):
                admitted = True
                detail = await _converse(machine, link, timeline, stream)
    except TimeoutError:
        if link is not None and not admitted:
            raise LocalError(
                LocalReason.BUSY,
                f"{target.endpoint}: nothing sent in {timeout:g} s: "
                "another probe of the same key held its turn",
            ) from None
        return timeline.failed(*_timed_out(timeline.pending, machine, target, timeout))
    except _Ended as ended:
        return timeline.failed(ended.failed.failure, timeline.pending, ended.failed.detail)
    except OSError as exc:
        cause, detail = classify(exc), f"{target.endpoint}: {describe(exc)}"
        if isinstance(cause, LocalReason):
            raise LocalError(cause, detail) from None
        return timeline.failed(cause, timeline.pending, detail)
    finally:
        if link is not None:
            link.close()
    return timeline.success(detail)


async def _converse(machine: Machine, link: Link, timeline: Timeline, stream: bool) -> str:
    """Feed the machine until it completes (its detail) or fails (raises _Ended)."""
    loop = asyncio.get_running_loop()
    machine.start(loop.time())
    inputs = 0
    while inputs < machine.input_budget:
        inputs += 1
        if out := machine.data_to_send(loop.time()):
            await link.send(out)
        while (event := machine.next_event()) is not None:
            if isinstance(event, StageCompleted):
                timeline.reached(event.stage)
            elif isinstance(event, Redirected):
                link.redirect(event.port)
            elif isinstance(event, CertificateVerified):
                timeline.certificate_not_after = event.not_after
            elif isinstance(event, TunnelMeasured):
                timeline.tunnel = event.quality
            elif isinstance(event, Completed):
                return event.detail
            elif isinstance(event, Failed):
                raise _Ended(event)
        wake = machine.timer()
        data = await link.receive(None if wake is None else max(0.0, wake - loop.time()))
        if data is not None:
            machine.receive(data, loop.time())
            if stream and not data and not machine.finished:  # EOF the machine did not judge
                raise _Ended(Failed(Failure.EOF, "the peer closed the connection"))
        # Due timers fire even while input keeps arriving: a flood must not hold off a resend.
        if wake is not None and loop.time() >= wake:
            machine.handle_timer(loop.time())
    raise _Ended(Failed(Failure.PROTOCOL, f"no conclusion after {inputs} inputs"))


def _timed_out(
    stage: str, machine: Machine, target: TargetBase, timeout: float
) -> tuple[Failure, str, str]:
    if stage == "resolve":
        return Failure.TIMEOUT, stage, f"resolving {target.host} took longer than {timeout:g} s"
    if stage == "connect":
        return Failure.TIMEOUT, stage, f"no answer to the TCP handshake within {timeout:g} s"
    failed = machine.timed_out()
    return failed.failure, stage, f"{failed.detail} within {timeout:g} s"
