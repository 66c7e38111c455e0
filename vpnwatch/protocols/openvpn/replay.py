"""Data-channel packet ids: the counter we send, and the sliding window that rejects replays.

In TLS mode every data packet carries a 32-bit packet id, counting from 1 per key and direction
(OpenVPN's short form, without a timestamp). The receiver accepts each id once, and only within
a window behind the highest id seen (``--replay-window``, 64 packets by default), as OpenVPN's
``packet_id_test`` does: a reordered packet is fine, an old or repeated one is not.
"""

from __future__ import annotations

from vpnwatch.protocols.openvpn.packets import PacketError

PACKET_ID_SIZE = 4
#: OpenVPN's default --replay-window.
DEFAULT_WINDOW = 64
_MAX_ID = 0xFFFFFFFF


class ReplayError(PacketError):
    """A packet id already seen, zero, or too far behind the window."""


class PacketIdCounter:
    """The ids we send: 1, 2, 3 … ; never wraps (a key is renegotiated long before)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        if self._last == _MAX_ID:
            raise OverflowError("packet ids exhausted: the key must be renegotiated")
        self._last += 1
        return self._last


class ReplayWindow:
    """Which received ids were accepted: the highest, and a bitmap of the ``size`` before it."""

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError("a replay window holds at least one packet")
        self._size = size
        self._highest = 0
        self._seen = 0  # bit i: highest - i was accepted

    def check(self, packet_id: int) -> None:
        """Raise ReplayError unless ``packet_id`` would be accepted; does not record it.

        Checked before a packet is authenticated and recorded only after, so that forged packets
        cannot move the window.
        """
        if packet_id == 0:
            raise ReplayError("packet id 0 is never sent")
        if packet_id > self._highest:
            return
        behind = self._highest - packet_id
        if behind >= self._size:
            raise ReplayError(f"packet id {packet_id} is older than the replay window")
        if self._seen >> behind & 1:
            raise ReplayError(f"packet id {packet_id} was already received")

    def accept(self, packet_id: int) -> None:
        """Record an authenticated ``packet_id`` (which :meth:`check` let through)."""
        self.check(packet_id)
        if packet_id > self._highest:
            shift = packet_id - self._highest
            self._seen = (self._seen << shift | 1) & ((1 << self._size) - 1)
            self._highest = packet_id
        else:
            self._seen |= 1 << (self._highest - packet_id)
