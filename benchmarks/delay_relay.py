"""A UDP relay that holds every datagram towards the server for a fixed delay: a known latency.

The accuracy benchmark needs the lab to add a delay it knows exactly; this relay runs inside the
lab namespace, in a process of its own (so the monitor's load does not slow it), and forwards
datagrams from its listening address to the server after ``--delay`` seconds; replies come back at
once. The round trip through it is therefore the direct one plus the delay. It writes ``ready``
once it listens, and on SIGTERM (or after ``--max-seconds``) one JSON line: how late it released
datagrams against their due time, which bounds how exact the reference is.

Run: ``python -m benchmarks.delay_relay --listen HOST:PORT --server HOST:PORT --delay 0.05``.
"""

from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.measure import percentile

_MAX_DATAGRAM = 65535
#: Clients it keeps an upstream socket for, and datagrams it holds at once: beyond, it drops.
MAX_CLIENTS = 4096
MAX_HELD = 65536
_IDLE_WAIT = 0.5

_Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class _Held:
    due: float
    data: bytes
    client: _Address


def _address(text: str) -> _Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


class DelayRelay:
    """The relay's state: its sockets, what it holds, and how late it released each datagram."""

    def __init__(self, listen: _Address, server: _Address, delay: float) -> None:
        self._server = server
        self._delay = delay
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._listener.bind(listen)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._upstream: dict[_Address, socket.socket] = {}
        self._clients: dict[socket.socket, _Address] = {}
        self._held: deque[_Held] = deque()
        self.late: list[float] = []
        self.dropped = 0

    def run(self, until: float) -> None:
        """Relay until ``until`` (monotonic) or a stop signal."""
        while (now := time.monotonic()) < until:
            wait = max(0.0, self._held[0].due - now) if self._held else _IDLE_WAIT
            for key, _ in self._selector.select(min(wait, until - now)):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock is self._listener:
                        self._hold(*sock.recvfrom(_MAX_DATAGRAM))
                    else:
                        self._listener.sendto(sock.recv(_MAX_DATAGRAM), self._clients[sock])
                except OSError:  # an ICMP error for an earlier datagram: that one is lost
                    self.dropped += 1
            self._release(time.monotonic())

    def _hold(self, data: bytes, client: _Address) -> None:
        if len(self._held) >= MAX_HELD:
            self.dropped += 1
            return
        self._held.append(_Held(time.monotonic() + self._delay, data, client))

    def _release(self, now: float) -> None:
        # One delay for every datagram: due times only grow, so the queue is in order.
        while self._held and self._held[0].due <= now:
            held = self._held.popleft()
            upstream = self._upstream_for(held.client)
            if upstream is None:
                self.dropped += 1
                continue
            try:
                upstream.send(held.data)
            except OSError:
                self.dropped += 1
                continue
            self.late.append(now - held.due)

    def _upstream_for(self, client: _Address) -> socket.socket | None:
        upstream = self._upstream.get(client)
        if upstream is None and len(self._upstream) < MAX_CLIENTS:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            upstream.connect(self._server)
            self._selector.register(upstream, selectors.EVENT_READ)
            self._upstream[client] = upstream
            self._clients[upstream] = client
        return upstream

    def summary(self) -> dict[str, float | int]:
        return {
            "relayed": len(self.late),
            "dropped": self.dropped,
            "late_p50_ms": round(percentile(self.late, 0.50) * 1e3, 3),
            "late_p99_ms": round(percentile(self.late, 0.99) * 1e3, 3),
            "late_max_ms": round(max(self.late, default=0.0) * 1e3, 3),
        }


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, required=True)
    parser.add_argument("--server", type=_address, required=True)
    parser.add_argument("--delay", type=float, required=True)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args(argv)
    relay = DelayRelay(args.listen, args.server, args.delay)
    signal.signal(signal.SIGTERM, _stop)
    print("ready", flush=True)
    try:
        relay.run(until=time.monotonic() + args.max_seconds)
    except SystemExit:
        pass
    finally:
        json.dump(relay.summary(), sys.stdout)
        print(flush=True)


if __name__ == "__main__":
    main()
