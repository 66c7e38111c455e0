"""The WireGuard probe: one handshake over UDP, verified by the sans-IO initiator.

The probe succeeds only when the server's response decrypts and authenticates. Everything else
that can happen on the way becomes a :class:`Failure`: a name that does not resolve (``dns``), an
ICMP error on the connected socket (``refused``, ``unreachable``), a reply that fails
authentication (``auth``), replies that are not WireGuard at all (``protocol``) or nothing valid
in time (``timeout``). Stray and forged datagrams are counted and ignored while the probe waits,
so that one injected packet cannot end it.

Two rules of the server shape how initiations go out. It drops an initiation whose timestamp is
not newer than the last it saw from the key, so all timestamps come from one process-wide
:class:`TimestampGuard`; and it drops one arriving within 20 ms of the last it accepted from the
key, so initiations of one key to one server take turns (:class:`_Turns`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator

from vpnwatch.probes.net import UdpChannel, resolve
from vpnwatch.protocols.wireguard import (
    INITIATION_INTERVAL,
    ClockBehindError,
    CookieReceived,
    DatagramRejected,
    HandshakeCompleted,
    Rejection,
    TimestampGuard,
    WireGuardInitiator,
)
from vpnwatch.result import Failure, ProbeFailed, Result, Timeline, failure_from_oserror
from vpnwatch.targets.wireguard import WireGuardTarget

PROTOCOL = "wireguard"

#: How many datagrams one probe reads before it gives up on a flood of invalid ones.
MAX_DATAGRAMS = 256
_CLOCK_RETRIES = 3
_MAX_CLOCK_WAIT = 0.1

_TIMESTAMPS = TimestampGuard(time.time_ns)


_Pair = tuple[bytes, bytes]  # (client public key, server public key)


class _Turns:
    """Lets one initiation of a client key to a server be in flight at a time, spaced apart.

    The server drops an initiation that arrives within an interval of the last one it accepted
    from the key, or whose timestamp is older than one it has seen; and it works through
    initiations on several threads, so two in flight at once can be taken in either order. So a
    probe takes the pair's turn before it sends, holds it until it has its answer or gives up, and
    the next turn starts a full interval after that moment: the server accepted the initiation
    before it answered, so whatever the network's delay, the next one arrives later than that.
    Pairs, not keys alone, take turns: one monitor key may probe many servers at once.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        # Per event loop, since an asyncio.Lock belongs to the loop that first waits on it.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Pair, asyncio.Lock]]
        self._locks = weakref.WeakKeyDictionary()
        self._free_at: dict[_Pair, float] = {}

    @contextlib.asynccontextmanager
    async def turn(self, pair: _Pair) -> AsyncIterator[None]:
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(pair, asyncio.Lock()):
            wait = self._free_at.get(pair, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._free_at[pair] = time.monotonic() + self._interval


_TURNS = _Turns(INITIATION_INTERVAL)


class _Handshake:
    """One probe's exchange: the initiator, its socket, and what was ignored while waiting."""

    def __init__(self, target: WireGuardTarget, initiator: WireGuardInitiator) -> None:
        self._target = target
        self._initiator = initiator
        self._pair = (initiator.public_key, target.public_key)
        self.ignored: Counter[Rejection] = Counter()
        self.cookie_received = False
        self.sent = False

    async def run(self, family: socket.AddressFamily, address: tuple[str, int]) -> None:
        """Send the initiation and return once a verified response is in (and answered)."""
        channel = await UdpChannel.connect(family, address)
        try:
            async with _TURNS.turn(self._pair):
                channel.send(self._initiator.initiate(await _fresh_timestamp()))
                self.sent = True
                await self._await_response(channel)
        finally:
            channel.close()

    async def _await_response(self, channel: UdpChannel) -> None:
        for _ in range(MAX_DATAGRAMS):
            match self._initiator.receive(await channel.receive()):
                case HandshakeCompleted():
                    if self._target.keepalive:
                        channel.send(self._initiator.keepalive())
                    return
                case CookieReceived():
                    self.cookie_received = True
                    channel.send(self._initiator.initiate(await _fresh_timestamp()))
                case DatagramRejected(reason=Rejection.AUTHENTICATION):
                    raise ProbeFailed(
                        Failure.AUTH,
                        "the server's reply fails authentication: a wrong preshared key, "
                        "or a server without the private key of this public key",
                    )
                case DatagramRejected(reason=reason):
                    self.ignored[reason] += 1
        raise ProbeFailed(Failure.PROTOCOL, f"no valid reply among {self.describe_ignored()}")

    def describe_ignored(self) -> str:
        total = sum(self.ignored.values())
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.ignored.most_common())
        return f"{total} datagram{'' if total == 1 else 's'} ({reasons})"

    def verdict_on_timeout(self, timeout: float) -> tuple[Failure, str]:
        """``protocol`` if the endpoint answered with anything but WireGuard, else ``timeout``."""
        if not self.sent:
            return Failure.TIMEOUT, (
                f"nothing sent within {timeout:g} s: "
                "another probe of this key to this server held its turn"
            )
        detail = f"no valid reply within {timeout:g} s"
        if not self.ignored:
            return Failure.TIMEOUT, detail
        detail += f"; ignored {self.describe_ignored()}"
        if self.ignored[Rejection.MALFORMED]:
            return Failure.PROTOCOL, detail
        return Failure.TIMEOUT, detail


async def _fresh_timestamp() -> bytes:
    """A timestamp from the process-wide guard, waiting out a wall clock that has not moved on.

    A clock stepped back by more than a moment fails the probe rather than send a timestamp the
    server would silently drop: it has seen a newer one from this key.
    """
    for _ in range(_CLOCK_RETRIES):
        try:
            return _TIMESTAMPS.issue()
        except ClockBehindError as behind:
            wait = behind.wait_ns / 1e9
            if wait > _MAX_CLOCK_WAIT:
                raise ProbeFailed(
                    Failure.TIMEOUT,
                    f"the system clock went back {wait:.3f} s; "
                    "the server drops initiations until it has passed the last one sent",
                ) from None
            await asyncio.sleep(wait)
    raise ProbeFailed(Failure.TIMEOUT, "the system clock keeps going back")


async def probe_wireguard(target: WireGuardTarget, timeout: float) -> Result:
    """Handshake once with ``target`` within ``timeout`` seconds; never raises for the network."""
    timeline = Timeline(target.name, PROTOCOL)
    preshared_key = target.preshared_key.get_secret_value() if target.preshared_key else None
    try:
        initiator = WireGuardInitiator(
            target.private_key.get_secret_value(), target.public_key, preshared_key
        )
    except ValueError:
        return timeline.failed(Failure.AUTH, "handshake", "the public key is not a usable key")
    handshake = _Handshake(target, initiator)
    stage = "resolve"
    try:
        async with asyncio.timeout(timeout):
            family, address = await resolve(target.host, target.port, socket.SOCK_DGRAM)
            timeline.reached(stage)
            stage = "handshake"
            await handshake.run(family, address)
    except ProbeFailed as failed:
        return timeline.failed(failed.failure, stage, failed.detail)
    except TimeoutError:
        if stage == "resolve":
            detail = f"resolving {target.host} took longer than {timeout:g} s"
            return timeline.failed(Failure.TIMEOUT, stage, detail)
        failure, detail = handshake.verdict_on_timeout(timeout)
        return timeline.failed(failure, stage, detail)
    except OSError as exc:
        detail = f"{target.endpoint}: {exc.strerror or type(exc).__name__}"
        return timeline.failed(failure_from_oserror(exc), stage, detail)
    timeline.reached(stage)
    retried = " after a cookie reply" if handshake.cookie_received else ""
    return timeline.success(f"handshake with {target.endpoint}{retried}")
