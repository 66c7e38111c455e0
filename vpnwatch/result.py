"""The one outcome type every probe returns, and its closed failure taxonomy.

Failure names are a public contract: they appear in JSON output, metric labels and reports, so a
new member is a breaking change and an existing one is never renamed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Failure(StrEnum):
    """Why a probe failed; every failed probe carries exactly one."""

    TIMEOUT = "timeout"  # nothing (valid) came back in time: silent drop, or a peer ignoring us
    REFUSED = "refused"  # ICMP port unreachable on UDP, RST answering a TCP SYN
    RESET = "reset"  # TCP reset after the connection was up (typical of DPI injection)
    UNREACHABLE = "unreachable"  # ICMP host/network unreachable, no route
    EOF = "eof"  # the peer closed the stream mid-handshake
    DNS = "dns"  # the endpoint's name did not resolve
    TLS_CERT = "tls_cert"  # the server's certificate failed verification
    TLS = "tls"  # any other TLS failure (alert, version, cipher)
    AUTH = "auth"  # keys or credentials do not match, or the reply failed authentication
    PROTOCOL = "protocol"  # the peer answered with something malformed or unexpected


class Degradation(StrEnum):
    """Why a tunnel that carries traffic is ``degraded``: a closed set, like :class:`Failure`.

    A tunnel that carries nothing at all is not degraded but failed (``timeout`` in ``data``).
    These names are a public contract too: JSON output, metric labels and reports carry them.
    """

    LOSS = "loss"  # more echoes of the train were lost than the threshold allows
    RTT = "rtt"  # the train's median round trip is above the threshold
    JITTER = "jitter"  # round trips vary more from one echo to the next than the threshold
    GOODPUT = "goodput"  # the burst came through slower than the threshold
    CUT = "cut"  # the session stopped carrying traffic before the hold was over


@dataclass(frozen=True, slots=True)
class TunnelQuality:
    """What one tunnel test measured, in three phases (see :mod:`vpnwatch.protocols.tunnel`).

    - the **train**: ``train_sent`` small echoes, spaced out; ``rtts`` holds the round trip of
      each answered one, in the order sent (loss, RTT and jitter come from it);
    - the **burst**: ``burst_bytes`` of echoes sent back to back, lost ones sent again, until
      all came back or the phase's time ran out; ``goodput`` is the bytes delivered per second
      (None when no burst was planned);
    - the **hold**: echoes paced over the hold's seconds or bytes; ``cut`` when the session
      stopped answering for good before the end, ``held_seconds``/``held_bytes`` how long and how
      much it carried (from the first echo sent to the last reply).

    ``sent``/``received`` count echoes per phase (retransmissions included) and ``bytes_sent``/
    ``bytes_received`` the inner IP bytes, for counters.
    """

    train_sent: int
    train_received: int
    rtts: tuple[float, ...]
    goodput: float | None
    held_seconds: float
    held_bytes: int
    cut: bool
    sent: tuple[tuple[str, int], ...] = ()
    received: tuple[tuple[str, int], ...] = ()
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def loss(self) -> float | None:
        """The share of the train's echoes that never came back (None for an empty train)."""
        return 1 - self.train_received / self.train_sent if self.train_sent else None

    @property
    def rtt_median(self) -> float | None:
        if not self.rtts:
            return None
        ordered = sorted(self.rtts)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference of consecutive round trips (RFC 3550's interarrival jitter,
        without its smoothing); None with fewer than two."""
        if len(self.rtts) < 2:
            return None
        steps = [abs(b - a) for a, b in zip(self.rtts, self.rtts[1:], strict=False)]
        return sum(steps) / len(steps)


@dataclass(frozen=True, slots=True)
class Result:
    """What one probe of one target found.

    ``stages`` lists every stage reached with its time since the probe started, so a report can
    say not only that a handshake failed but how far it got and how long each step took.
    ``certificate_not_after`` is the Unix time the server certificate the probe verified expires
    (None when the protocol has none or verification did not get that far), so an expiry is
    seen days before it breaks every client.
    """

    target: str
    protocol: str
    ok: bool
    failure: Failure | None
    stage: str
    stages: tuple[tuple[str, float], ...]
    duration: float
    detail: str = ""
    certificate_not_after: float | None = None
    #: Set by a tunnel test (None for a handshake probe), also when it failed: echoes were sent.
    tunnel: TunnelQuality | None = None
    #: Why a tunnel that works is degraded, judged against the target's thresholds; empty when
    #: it is not (and always for failed probes and handshake probes).
    degraded: tuple[Degradation, ...] = ()

    def __post_init__(self) -> None:
        if self.ok != (self.failure is None):
            raise ValueError("a Result is ok exactly when it carries no failure")
        if self.degraded and not self.ok:
            raise ValueError("only a Result that is ok can be degraded")


class LocalReason(StrEnum):
    """What the monitor's own host ran out of or refused: never an endpoint's failure.

    A closed set like :class:`Failure`, and a metric label (``vpnwatch_probe_errors_total``).
    """

    FILE_DESCRIPTORS = "file_descriptors"  # EMFILE, ENFILE: too many open files here
    BUFFERS = "buffers"  # ENOBUFS: the kernel's socket buffers are full
    MEMORY = "memory"  # ENOMEM
    PERMISSION = "permission"  # EPERM, EACCES: this host's firewall or privileges refused
    ADDRESS = "address"  # no local address or port for the family (EADDRNOTAVAIL, EAFNOSUPPORT)
    CLOCK = "clock"  # the wall clock stepped back: a timestamp the peer would drop
    BUSY = "busy"  # the probe's turn never came: other probes of its key held it
    OS = "os"  # any other error of this host's that says nothing about the peer
    INTERNAL = "internal"  # a probe raised: a bug in vpnwatch


class LocalError(Exception):
    """A probe could not be carried out here; no Result, so no verdict on the endpoint.

    Raised out of a probe. The scheduler counts and logs it as the monitor's own trouble, ``check``
    prints it as an error, and nothing reaches failure counters, verdicts, reports or evidence.
    """

    def __init__(self, reason: LocalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Timeline:
    """Stamps the stages of one probe on a monotonic clock and builds its Result.

    ``plan`` lists the stages a probe goes through in order; with it, :attr:`pending` names the
    stage being attempted, which is where a failure happened.
    """

    target: str
    protocol: str
    plan: tuple[str, ...] = ()
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    stages: list[tuple[str, float]] = field(init=False, default_factory=list)
    #: Until when the server certificate the probe verified is valid (Unix time), if it saw one.
    certificate_not_after: float | None = field(init=False, default=None)
    #: What the tunnel test measured, if this probe was one.
    tunnel: TunnelQuality | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def pending(self) -> str:
        """The first planned stage not reached yet (the last one, once all are)."""
        done = {stage for stage, _ in self.stages}
        return next(
            (stage for stage in self.plan if stage not in done), self.plan[-1] if self.plan else ""
        )

    def reached(self, stage: str) -> None:
        """Record that ``stage`` completed now."""
        self.stages.append((stage, self.elapsed()))

    def success(self, detail: str = "") -> Result:
        stage = self.stages[-1][0] if self.stages else ""
        return self._result(None, stage, detail)

    def failed(self, failure: Failure, stage: str, detail: str = "") -> Result:
        """A failure in ``stage``: the stage that was being attempted when it happened."""
        return self._result(failure, stage, detail)

    def _result(self, failure: Failure | None, stage: str, detail: str) -> Result:
        return Result(
            target=self.target,
            protocol=self.protocol,
            ok=failure is None,
            failure=failure,
            stage=stage,
            stages=tuple(self.stages),
            duration=self.elapsed(),
            detail=detail,
            certificate_not_after=self.certificate_not_after,
            tunnel=self.tunnel,
        )
