"""Turns: probes of one key pair to one server go one at a time, whatever happens to each."""

from __future__ import annotations

import asyncio

import pytest

from vpnwatch.probes.wireguard import Turns

PAIR = (b"k" * 32, b"p" * 32)
OTHER = (b"k" * 32, b"q" * 32)


async def test_probes_of_one_pair_take_turns_and_other_pairs_do_not_wait():
    turns = Turns(0.001)
    events: list[str] = []

    async def probe(name: str, pair: tuple[bytes, bytes]) -> None:
        async with turns.turn(pair):
            events.append(f"{name} in")
            await asyncio.sleep(0.01)
            events.append(f"{name} out")

    await asyncio.gather(probe("a", PAIR), probe("b", PAIR), probe("c", OTHER))
    assert events.index("a out") < events.index("b in")
    assert events.index("c in") < events.index("a out")  # another server: no waiting


async def test_a_probe_that_fails_or_is_cancelled_hands_the_turn_on():
    turns = Turns(0.001)
    with pytest.raises(RuntimeError):
        async with turns.turn(PAIR):
            raise RuntimeError("the probe's bug")
    holder_in, holder_go = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with turns.turn(PAIR):
            holder_in.set()
            await holder_go.wait()

    async def waiter() -> None:
        async with turns.turn(PAIR):
            raise AssertionError("a cancelled waiter must not get the turn")

    holding = asyncio.create_task(holder())
    await holder_in.wait()
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    waiting.cancel()
    holder_go.set()
    await holding
    with pytest.raises(asyncio.CancelledError):
        await waiting
    async with asyncio.timeout(5), turns.turn(PAIR):  # free again
        pass
