"""The randomness a capture recorded, handed out again in the order it was drawn."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def replay_draws(capture: str, draws: Iterable[bytes]) -> Callable[[int], bytes]:
    """A ``random_bytes`` that returns ``draws`` in order; a draw of another length fails."""
    remaining = iter(draws)

    def random_bytes(length: int) -> bytes:
        draw = next(remaining)
        assert len(draw) == length, f"{capture}: drew {length} bytes, {len(draw)} recorded"
        return draw

    return random_bytes
