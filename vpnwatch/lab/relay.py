"""The censor's userspace path: a delay line that holds packets before letting them continue.

This kernel has no netem and no NFQUEUE, so :mod:`vpnwatch.lab.censor` has tc redirect the flows
it delays, in both directions, from the wire to a TAP device that this process owns. Each frame
read from the TAP is held for the delay, then released where it was going: a frame addressed to
the wire's MAC arrived from the monitor, and is written back into the TAP, which the kernel takes
as the frame arriving (the TAP wears the wire's MAC); any other frame is an answer leaving, and is
sent out on the wire through a packet socket that bypasses tc, so it is not redirected again.

Packets are held, not parsed: the kernel's own TCP and UDP see them, late, exactly as sent. With
no jitter the line is a FIFO (one delay for every frame keeps the order); with ``--jitter`` each
frame is held up to that much longer, drawn uniformly, so frames overtake each other as they do
behind netem's jitter. Either way it is bounded like a router's buffer.

Run inside the lab namespace: ``python -m vpnwatch.lab.relay --tap vwdelay --wire eth0 --delay
0.5``. It prints ``ready`` once the TAP exists, and runs until it is terminated.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_SOL_PACKET = 263
_PACKET_QDISC_BYPASS = 20
_ETHERTYPES_IP = (b"\x08\x00", b"\x86\xdd")
_MAX_FRAME = 65536
#: Frames held at once; beyond it new ones are dropped, as a router's full buffer drops them.
CAPACITY = 4096


def open_tap(name: str) -> int:
    """Create the TAP device ``name`` (it disappears when this process exits)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
    return fd


def open_wire(device: str) -> socket.socket:
    """A packet socket that transmits on ``device`` past its qdisc and tc filters."""
    wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # 0: it receives nothing
    wire.setsockopt(_SOL_PACKET, _PACKET_QDISC_BYPASS, 1)
    wire.bind((device, 0))
    return wire


class DelayLine:
    """Holds each frame ``delay`` seconds (plus up to ``jitter``), then sends it on its way."""

    def __init__(
        self,
        tap: int,
        wire: socket.socket,
        wire_mac: bytes,
        delay: float,
        *,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._tap = tap
        self._wire = wire
        self._wire_mac = wire_mac
        self._delay = delay
        self._jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - a lab's jitter, not a secret
        self._held: list[tuple[float, int, bytes]] = []  # a heap: (release time, arrival, frame)
        self._arrivals = 0
        self.dropped = 0

    def run(self) -> None:
        while True:
            wait = max(0.0, self._held[0][0] - time.monotonic()) if self._held else None
            readable, _, _ = select.select([self._tap], [], [], wait)
            if readable:
                self._hold(os.read(self._tap, _MAX_FRAME))
            self._release(time.monotonic())

    def _hold(self, frame: bytes) -> None:
        if frame[12:14] not in _ETHERTYPES_IP:
            return  # tc sends only TCP and UDP here; anything else is the TAP's own chatter
        if len(self._held) >= CAPACITY:
            self.dropped += 1
            return
        self._arrivals += 1
        extra = self._rng.uniform(0, self._jitter) if self._jitter else 0.0
        heapq.heappush(self._held, (time.monotonic() + self._delay + extra, self._arrivals, frame))

    def _release(self, now: float) -> None:
        while self._held and self._held[0][0] <= now:
            _, _, frame = heapq.heappop(self._held)
            try:
                if frame[:6] == self._wire_mac:
                    os.write(self._tap, frame)
                else:
                    self._wire.send(frame)
            except OSError:
                self.dropped += 1  # a full queue or a vanished link: lost, like on any wire


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tap", required=True, help="name of the TAP device to create")
    parser.add_argument("--wire", required=True, help="the link the frames belong to")
    parser.add_argument("--delay", required=True, type=float, help="seconds to hold each frame")
    parser.add_argument("--jitter", type=float, default=0.0, help="up to this many seconds more")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    mac = bytes.fromhex(Path(f"/sys/class/net/{args.wire}/address").read_text().replace(":", ""))
    line = DelayLine(open_tap(args.tap), open_wire(args.wire), mac, args.delay, jitter=args.jitter)
    print("ready", flush=True)
    line.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
