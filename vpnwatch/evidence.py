"""Evidence: packet captures of failed probes, in a bounded ring with a JSON index.

A failure class says how a probe failed; the packets show it: the initiation that got no answer,
the reset that arrived after the first data, the ICMP error a router sent back. Around each probe
a :class:`Watch` captures the probe's own flow (the target's addresses, port and transport, and
ICMP errors about it) from a packet socket filtered in the kernel; if the probe failed, the
packets go to a pcap file (raw IP, readable by tshark, Wireshark and scapy) and into the index::

    async with recorder.watch(target) as watch:
        result = await probe(target, timeout)
        watch.keep_if_failed(result)

The ring never holds more than ``max_files`` files or ``max_bytes`` bytes: the oldest go first. The
index (``index.json``) lists each kept capture's target, protocol, time, failure, stage, detail
and file, oldest first. scapy is imported on first use (it costs about 0.6 s), off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import logging
import os
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vpnwatch.config import EvidenceSettings
from vpnwatch.errors import ConfigError
from vpnwatch.probes import Probe
from vpnwatch.result import Result
from vpnwatch.targets.base import TargetBase

log = logging.getLogger(__name__)

INDEX = "index.json"
#: pcap's LINKTYPE_RAW: each record is an IPv4 or IPv6 packet, whatever link it crossed.
LINKTYPE_RAW = 101
_ETH_P_ALL = 0x0003
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True, slots=True)
class Entry:
    """One kept capture, as the index lists it."""

    target: str
    protocol: str
    time: float  # Unix time the probe started
    failure: str
    stage: str
    detail: str
    file: str
    packets: int
    bytes: int


@dataclass(slots=True)
class Packet:
    time: float
    data: bytes
    length: int  # on the wire, when ``data`` was cut at the snap length


class EvidenceRecorder:
    """Captures around probes and keeps the failed ones' packets in a bounded ring."""

    def __init__(self, settings: EvidenceSettings) -> None:
        _check_capture_possible()
        self.settings = settings
        self.directory = settings.directory
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {self.directory}: {exc.strerror}", where="settings.evidence"
            ) from None
        self._entries = _read_index(self.directory / INDEX)
        self._sequence = 0

    def capturing(self, probe: Probe) -> Probe:
        """``probe``, with the packets of each failed run kept."""

        async def captured(target: TargetBase, timeout: float, **options: Any) -> Result:
            async with self.watch(target) as watch:
                result = await probe(target, timeout, **options)
                watch.keep_if_failed(result)
                return result

        return captured

    @property
    def entries(self) -> list[Entry]:
        """The kept captures, oldest first."""
        return list(self._entries)

    @contextlib.asynccontextmanager
    async def watch(self, target: TargetBase) -> AsyncIterator[Watch]:
        """Capture ``target``'s flow for the duration of the block."""
        watch = Watch(target, time.time())
        capture = await _Capture.open(target, self.settings)
        try:
            yield watch
        finally:
            if capture is not None:
                packets = capture.close()
                if watch.result is not None and not watch.result.ok:
                    self._keep(watch, watch.result, packets)

    def _keep(self, watch: Watch, result: Result, packets: list[Packet]) -> None:
        self._sequence += 1
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", watch.target.name)[:64]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(watch.started))
        name = f"{stamp}-{self._sequence:04d}-{safe_name}-{result.failure}.pcap"
        path = self.directory / name
        _write_pcap(path, packets, self.settings.snaplen)
        self._entries.append(
            Entry(
                target=watch.target.name,
                protocol=result.protocol,
                time=round(watch.started, 6),
                failure=str(result.failure),
                stage=result.stage,
                detail=result.detail,
                file=name,
                packets=len(packets),
                bytes=path.stat().st_size,
            )
        )
        self._enforce_bounds()
        _write_index(self.directory / INDEX, self._entries)

    def _enforce_bounds(self) -> None:
        total = sum(entry.bytes for entry in self._entries)
        while self._entries and (
            len(self._entries) > self.settings.max_files or total > self.settings.max_bytes
        ):
            oldest = self._entries.pop(0)
            total -= oldest.bytes
            (self.directory / oldest.file).unlink(missing_ok=True)


@dataclass
class Watch:
    """One probe's capture: tell it the result, and a failure's packets are kept."""

    target: TargetBase
    started: float
    result: Result | None = field(default=None, init=False)

    def keep_if_failed(self, result: Result) -> None:
        self.result = result


def _check_capture_possible() -> None:
    """Fail at start-up, with what is missing, rather than on every probe."""
    if importlib.util.find_spec("scapy") is None:
        raise ConfigError(
            "capturing needs scapy: pip install 'vpnwatch[capture]'", where="settings.evidence"
        )
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL)).close()
    except PermissionError:
        raise ConfigError(
            "capturing needs CAP_NET_RAW: run as root or grant the capability",
            where="settings.evidence",
        ) from None


class _Capture:
    """A packet socket seeing only one target's flow, read by the event loop as packets come."""

    def __init__(self, sock: socket.socket, settings: EvidenceSettings) -> None:
        self._sock = sock
        self._settings = settings
        self.packets: list[Packet] = []
        asyncio.get_running_loop().add_reader(sock.fileno(), self._drain)

    @classmethod
    async def open(cls, target: TargetBase, settings: EvidenceSettings) -> _Capture | None:
        """Start capturing; None when the target's name does not resolve (nothing to see)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port)
        except OSError:
            return None
        addresses = sorted({str(info[4][0]) for info in infos})
        scapy = await _scapy()
        expression = flow_filter(addresses, target.port, target.transport)
        program = scapy.compile_filter(expression, linktype=LINKTYPE_RAW)
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
        try:
            fprog = scapy.sock_fprog(program.bf_len, program.bf_insns)
            sock.setsockopt(socket.SOL_SOCKET, scapy.attach_filter_option, fprog)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        finally:
            scapy.free_filter(program)
        return cls(sock, settings)

    def _drain(self) -> None:
        """Read every packet waiting; beyond the per-probe bound, read and discard."""
        buffer = bytearray(self._settings.snaplen)
        ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        while True:
            try:
                # With MSG_TRUNC a packet socket returns the packet's full length, not the
                # part that fit: pcap records both.
                length, cmsgs, _, _ = self._sock.recvmsg_into([buffer], ancillary, socket.MSG_TRUNC)
            except (BlockingIOError, InterruptedError):
                return
            if len(self.packets) >= self._settings.max_packets:
                continue
            stamp = time.time()
            for level, kind, payload in cmsgs:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
                    stamp = seconds + nanoseconds / 1e9
            self.packets.append(Packet(stamp, bytes(buffer[: min(length, len(buffer))]), length))

    def close(self) -> list[Packet]:
        """Stop capturing, after reading what already arrived (the last answer, a reset)."""
        self._drain()
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        return self.packets


def flow_filter(addresses: list[str], port: int, transport: str) -> str:
    """A pcap filter for one probe's flow, and ICMP errors about packets sent on it."""
    clauses = []
    for address in addresses:
        clauses.append(f"({transport} and host {address} and port {port})")
        if ":" in address:
            # ICMPv6 destination unreachable (1) or time exceeded (3) quoting a packet to it:
            # the quoted header starts after the ICMPv6 header, 48 bytes in; its destination
            # 24 bytes later.
            words = socket.inet_pton(socket.AF_INET6, address)
            quoted = " and ".join(
                f"ip6[{72 + 4 * i}:4] == 0x{words[4 * i : 4 * i + 4].hex()}" for i in range(4)
            )
            clauses.append(f"(icmp6 and (ip6[40] == 1 or ip6[40] == 3) and {quoted})")
        else:
            # ICMP destination unreachable (3) or time exceeded (11) quoting a packet to it.
            quoted = f"icmp[24:4] == 0x{socket.inet_aton(address).hex()}"
            clauses.append(f"(icmp and (icmp[0] == 3 or icmp[0] == 11) and {quoted})")
    return " or ".join(clauses)


def _write_pcap(path: Path, packets: list[Packet], snaplen: int) -> None:
    from scapy.utils import PcapWriter  # noqa: PLC0415 - scapy is loaded by the capture

    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        writer = PcapWriter(file, linktype=LINKTYPE_RAW, snaplen=snaplen, nano=True, sync=False)
        writer.write_header(None)
        for packet in packets:
            seconds = int(packet.time)
            fraction = round((packet.time - seconds) * 1e9)
            writer.write_packet(
                packet.data, sec=seconds, usec=fraction, caplen=len(packet.data),
                wirelen=packet.length,
            )  # fmt: skip
        writer.flush()


def _read_index(path: Path) -> list[Entry]:
    """The index left by an earlier run; one that cannot be read starts the ring afresh."""
    try:
        records = json.loads(path.read_text())["entries"]
        return [Entry(**record) for record in records]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("evidence index %s unreadable (%s): starting a new one", path, exc)
        return []


def _write_index(path: Path, entries: list[Entry]) -> None:
    """Replace the index atomically: a reader never sees half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    document: dict[str, Any] = {"version": 1, "entries": [asdict(entry) for entry in entries]}
    temporary.write_text(json.dumps(document, indent=1) + "\n")
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class _Scapy:
    """The few scapy functions a capture needs (scapy ships no type hints)."""

    compile_filter: Callable[..., Any]
    free_filter: Callable[[Any], None]
    sock_fprog: Callable[..., Any]
    attach_filter_option: int


async def _scapy() -> _Scapy:
    """scapy, imported once, in a thread: the import takes long enough to stall the loop."""
    return await asyncio.to_thread(_import_scapy)


@functools.cache
def _import_scapy() -> _Scapy:
    from scapy.arch.common import compile_filter, free_filter  # noqa: PLC0415
    from scapy.data import SO_ATTACH_FILTER  # noqa: PLC0415
    from scapy.libs.structures import sock_fprog  # noqa: PLC0415

    return _Scapy(compile_filter, free_filter, sock_fprog, SO_ATTACH_FILTER)
