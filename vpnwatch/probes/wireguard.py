"""WireGuard on the driver: a :class:`WireGuardInitiator` per probe, and the server's pacing rules.

Two rules of the server shape how initiations go out. It drops an initiation whose timestamp is
not newer than the last it saw from the key, so all timestamps come from one process-wide
:class:`TimestampGuard`; and it drops one arriving within 20 ms of the last it accepted from the
key, so probes of one key to one server take turns (:class:`Turns`).

A tunnel test chains the handshake to a :class:`~vpnwatch.protocols.tunnel.TunnelTest` whose
echoes go from the interface's ``Address`` to the ``ping`` address as transport data messages.
"""

from __future__ import annotations

import asyncio
import time
import weakref

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.machine import LocalProtocolError, Machine
from vpnwatch.protocols.wireguard import (
    INITIATION_INTERVAL,
    NoiseHandshake,
    TimestampGuard,
    WireGuardInitiator,
    WireGuardTransport,
)
from vpnwatch.quality import TrainPlan
from vpnwatch.targets.wireguard import WireGuardTarget

_TIMESTAMPS = TimestampGuard(time.time_ns)

_Pair = tuple[bytes, bytes]  # (client private key, server public key)


class Turns:
    """Lets one probe of a client key to a server be in flight at a time, spaced apart.

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

    def turn(self, pair: _Pair) -> _Turn:
        """The pair's turn, as an ``async with`` block."""
        return _Turn(self, pair)

    def _lock(self, pair: _Pair) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if (locks := self._locks.get(loop)) is None:
            locks = self._locks[loop] = {}
        if (lock := locks.get(pair)) is None:
            lock = locks[pair] = asyncio.Lock()
        return lock


class _Turn:
    """One probe's turn of a pair (a class, not a generator: entered once per probe)."""

    __slots__ = ("_lock", "_pair", "_turns")

    def __init__(self, turns: Turns, pair: _Pair) -> None:
        self._turns = turns
        self._pair = pair
        self._lock = turns._lock(pair)

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            wait = self._turns._free_at.get(self._pair, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._turns._free_at[self._pair] = time.monotonic() + self._turns._interval
        self._lock.release()


_TURNS = Turns(INITIATION_INTERVAL)


def handshake_of(target: WireGuardTarget) -> NoiseHandshake:
    """The Noise handshake with the target's server, under the target's keys."""
    preshared_key = target.preshared_key.get_secret_value() if target.preshared_key else None
    return NoiseHandshake(target.private_key.get_secret_value(), target.public_key, preshared_key)


def _initiator(target: WireGuardTarget) -> WireGuardInitiator:
    return WireGuardInitiator(
        handshake_of(target), timestamps=_TIMESTAMPS.issue, keepalive=target.keepalive
    )


def _tunnel_test(target: WireGuardTarget, plan: TrainPlan) -> Machine:
    # Loaded for the first tunnel test: `vpnwatch check` of a handshake pays for none of it
    # (about a twentieth of its start-up).
    from vpnwatch.protocols.tunnel import Chain, TunnelTest  # noqa: PLC0415

    source, destination = target.source, target.ping
    if source is None or destination is None:
        raise LocalProtocolError(f"{target.name} has no tunnel addresses to test")

    def echoes(handshake: Machine) -> Machine:
        assert isinstance(handshake, WireGuardInitiator) and handshake.session is not None
        transport = WireGuardTransport(handshake.session, handshake.handshake.next_counter)
        return TunnelTest(transport, source, destination, plan)

    return Chain(_initiator(target), echoes, TunnelTest.stages)


def _turn(target: WireGuardTarget) -> _Turn:
    return _TURNS.turn((target.private_key.get_secret_value(), target.public_key))


WIREGUARD: ProbeSpec[WireGuardTarget] = ProbeSpec(
    machine=_initiator, gate=_turn, tunnel=_tunnel_test
)
