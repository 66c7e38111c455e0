"""Hostile peers for the lab: UDP and TCP responders that answer probes with what a censor, a
broken middlebox or an attacker might send back.

Each :class:`Behaviour` listens on a port of its own, over UDP and over TCP, inside a lab
namespace, and answers every probe the same way: garbage, a truncated reply, an oversized one, a
flood, endless slow bytes (one a second), or a reply that looks right but carries a bad MAC or
fails authentication. The replies are shaped by what the probe sent (a WireGuard initiation, an
OpenVPN hard reset, an obfs4 request), so each reaches as deep into the probe as it can.

The responders run as a process of their own (``python -m vpnwatch.lab.hostile``) inside the
namespace, started by :class:`HostilePeers`. They need only public values: the client key a
WireGuard target uses (mac1 is keyed with it) and a bridge's node id and identity key (the
obfs4 mark and MAC are keyed with them, as every holder of the bridge line can).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import os
import secrets
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

from vpnwatch.lab.controls import wait_listening
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.process import LabService
from vpnwatch.protocols.obfs4.handshake import (
    MAX_HANDSHAKE_LENGTH,
    epoch_hour,
    hmac_sha256_128,
)
from vpnwatch.protocols.openvpn.packets import (
    HEADER_SIZE,
    SESSION_ID_SIZE,
    ControlPacket,
    Opcode,
    frame_tcp,
)
from vpnwatch.protocols.openvpn.wrappers import STATIC_KEY_SIZE, TlsAuth
from vpnwatch.protocols.wireguard import (
    INITIATION_SIZE,
    LABEL_MAC1,
    MAC_SIZE,
    MESSAGE_INITIATION,
    MESSAGE_RESPONSE,
    RESPONSE_SIZE,
    blake2s_hash,
    keyed_mac,
)

#: The first port of each transport; behaviour number i listens on FIRST_PORT + i.
FIRST_PORT = 7000
#: The largest UDP payload over IPv4.
MAX_DATAGRAM = 65_507
FLOOD_DATAGRAMS = 500
#: How long a slow or held-open connection lasts at most, so that no responder runs forever.
MAX_CONNECTION_SECONDS = 600
_STARTUP_SECONDS = 10.0


class Behaviour(enum.StrEnum):
    GARBAGE = "garbage"  # random bytes (16 KiB over TCP, then held open)
    TRUNCATED = "truncated"  # the first bytes of a plausible reply; over TCP, then FIN
    OVERSIZED = "oversized"  # a 64 KiB datagram, or a TCP frame of the largest length
    FLOOD = "flood"  # UDP: hundreds of garbage datagrams per request
    SLOW = "slow"  # TCP: one byte a second, forever
    BAD_MAC = "bad-mac"  # right shape, wrong MAC: WireGuard mac1, tls-auth HMAC, obfs4 MAC
    BAD_AUTH = "bad-auth"  # MACs right, the authenticated part wrong: WireGuard, obfs4 AUTH


BEHAVIOURS = tuple(Behaviour)


def port_of(behaviour: Behaviour) -> int:
    return FIRST_PORT + BEHAVIOURS.index(behaviour)


@dataclass(frozen=True)
class PublicKeys:
    """The public values hostile replies are keyed with."""

    wireguard_client: bytes  # the X25519 public key of the WireGuard targets' private key
    obfs4_node_id: bytes
    obfs4_identity: bytes


# -- what the probes sent ---------------------------------------------------------------------


def _is_wireguard_initiation(data: bytes) -> bool:
    return len(data) == INITIATION_SIZE and struct.unpack_from("<I", data)[0] == MESSAGE_INITIATION


def _openvpn_session(packet: bytes) -> bytes:
    """The client's session id in its first packet (its place is the same whatever the wrapping)."""
    return packet[1:HEADER_SIZE].ljust(SESSION_ID_SIZE, b"\x00")


def _openvpn_reset(client_packet: bytes) -> ControlPacket:
    session = _openvpn_session(client_packet)
    return ControlPacket(
        Opcode.CONTROL_HARD_RESET_SERVER_V2, secrets.token_bytes(8), (0,), session, 0
    )


def _wrongly_keyed(packet: ControlPacket) -> bytes:
    """``packet`` behind a tls-auth HMAC made with a key the client does not hold."""
    return TlsAuth(secrets.token_bytes(STATIC_KEY_SIZE), 0).wrap(packet, int(time.time()))


# -- UDP --------------------------------------------------------------------------------------


def _wireguard_response(initiation: bytes, keys: PublicKeys, *, good_mac1: bool) -> bytes:
    """A response to ``initiation`` whose encrypted part is random: it cannot authenticate."""
    (sender,) = struct.unpack_from("<I", initiation, 4)
    body = struct.pack("<III", MESSAGE_RESPONSE, secrets.randbits(32), sender)
    body += secrets.token_bytes(RESPONSE_SIZE - len(body) - 2 * MAC_SIZE)
    mac1 = (
        keyed_mac(blake2s_hash(LABEL_MAC1, keys.wireguard_client), body)
        if good_mac1
        else secrets.token_bytes(MAC_SIZE)
    )
    return body + mac1 + bytes(MAC_SIZE)


def udp_replies(behaviour: Behaviour, request: bytes, keys: PublicKeys) -> list[bytes]:
    """The datagrams answering one datagram from a probe."""
    wireguard = _is_wireguard_initiation(request)
    if behaviour is Behaviour.GARBAGE:
        return [os.urandom(1 + secrets.randbelow(1400))]
    if behaviour is Behaviour.FLOOD:
        return [os.urandom(1 + secrets.randbelow(200)) for _ in range(FLOOD_DATAGRAMS)]
    if behaviour is Behaviour.TRUNCATED:
        whole = (
            _wireguard_response(request, keys, good_mac1=True)
            if wireguard
            else _openvpn_reset(request).encode()
        )
        return [whole[: len(whole) * 2 // 3]]
    if behaviour is Behaviour.OVERSIZED:
        first = struct.pack("<I", MESSAGE_RESPONSE) if wireguard else request[:1]
        return [first + os.urandom(MAX_DATAGRAM - len(first))]
    if wireguard:  # BAD_MAC and BAD_AUTH
        return [_wireguard_response(request, keys, good_mac1=behaviour is Behaviour.BAD_AUTH)]
    if behaviour in (Behaviour.BAD_MAC, Behaviour.BAD_AUTH):
        return [_wrongly_keyed(_openvpn_reset(request))]
    return []  # SLOW has no UDP form: silence


class _UdpResponder(asyncio.DatagramProtocol):
    def __init__(self, behaviour: Behaviour, keys: PublicKeys) -> None:
        self._behaviour = behaviour
        self._keys = keys
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self._transport is not None
        for reply in udp_replies(self._behaviour, data, self._keys):
            self._transport.sendto(reply, addr)


# -- TCP --------------------------------------------------------------------------------------


def _obfs4_hello(keys: PublicKeys, *, good_mac: bool) -> bytes:
    """A server hello with a valid mark; a valid MAC if asked, but an AUTH tag made up."""
    mac_key = keys.obfs4_identity + keys.obfs4_node_id
    representative = secrets.token_bytes(32)
    body = representative + secrets.token_bytes(32) + secrets.token_bytes(64)
    body += hmac_sha256_128(mac_key, representative)
    hour = str(epoch_hour(time.time())).encode()
    mac = hmac_sha256_128(mac_key, body, hour) if good_mac else secrets.token_bytes(16)
    return body + mac


def _looks_like_openvpn_tcp(request: bytes) -> bool:
    return len(request) > 3 and struct.unpack_from("!H", request)[0] == len(request) - 2


def tcp_reply(behaviour: Behaviour, request: bytes, keys: PublicKeys) -> bytes:
    """What to write, at once, after the probe's first bytes (SLOW writes its own way)."""
    openvpn = _looks_like_openvpn_tcp(request)
    if behaviour is Behaviour.GARBAGE:
        return os.urandom(2 * MAX_HANDSHAKE_LENGTH)
    if behaviour is Behaviour.TRUNCATED:
        return struct.pack("!H", 100) + os.urandom(10)  # a frame, or a hello, cut short
    if behaviour is Behaviour.OVERSIZED:
        return b"\xff\xff" + os.urandom(0xFFFF)
    if openvpn and behaviour in (Behaviour.BAD_MAC, Behaviour.BAD_AUTH):
        return frame_tcp(_wrongly_keyed(_openvpn_reset(request[2:])))
    if behaviour in (Behaviour.BAD_MAC, Behaviour.BAD_AUTH):
        return _obfs4_hello(keys, good_mac=behaviour is Behaviour.BAD_AUTH)
    return b""


def _tcp_handler(
    behaviour: Behaviour, keys: PublicKeys
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(MAX_CONNECTION_SECONDS):
                request = await reader.read(65536)
                if behaviour is Behaviour.SLOW:
                    await _drip(reader, writer)
                else:
                    writer.write(tcp_reply(behaviour, request, keys))
                    await writer.drain()
                    if behaviour is not Behaviour.TRUNCATED:
                        while await reader.read(65536):  # hold it open until the probe leaves
                            pass
        writer.close()

    return handle


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One byte a second until the probe leaves. 0x01 0x01 reads as a 257-byte OpenVPN frame,
    which never completes, and holds no obfs4 mark: both probes wait, neither can decide."""
    closed = asyncio.ensure_future(reader.read())
    try:
        while not closed.done():
            writer.write(b"\x01")
            await writer.drain()
            await asyncio.wait([closed], timeout=1.0)
    finally:
        closed.cancel()


# -- the process ------------------------------------------------------------------------------


async def serve(host: str, keys: PublicKeys) -> None:
    """Run every behaviour on UDP and TCP until cancelled."""
    loop = asyncio.get_running_loop()
    for behaviour in BEHAVIOURS:
        port = port_of(behaviour)
        await loop.create_datagram_endpoint(
            partial(_UdpResponder, behaviour, keys), local_addr=(host, port)
        )
        await asyncio.start_server(_tcp_handler(behaviour, keys), host, port)
    await asyncio.Event().wait()


@dataclass
class HostilePeers(LabService["HostilePeers"]):
    """The hostile responders inside ``namespace``; a context manager that stops them on exit."""

    namespace: Namespace
    keys: PublicKeys
    _process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return self.namespace.ip

    def start(self) -> HostilePeers:
        self._process = self.namespace.spawn(
            [
                sys.executable, "-m", "vpnwatch.lab.hostile", self.namespace.ip,
                self.keys.wireguard_client.hex(), self.keys.obfs4_node_id.hex(),
                self.keys.obfs4_identity.hex(),
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for behaviour in (BEHAVIOURS[0], BEHAVIOURS[-1]):
            wait_listening(self.namespace, port_of(behaviour), "tcp", _STARTUP_SECONDS)
            wait_listening(self.namespace, port_of(behaviour), "udp", _STARTUP_SECONDS)
        return self

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hostile UDP and TCP responders for the lab")
    parser.add_argument("host")
    parser.add_argument("wireguard_client", type=bytes.fromhex)
    parser.add_argument("obfs4_node_id", type=bytes.fromhex)
    parser.add_argument("obfs4_identity", type=bytes.fromhex)
    args = parser.parse_args(argv)
    keys = PublicKeys(args.wireguard_client, args.obfs4_node_id, args.obfs4_identity)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, keys))


if __name__ == "__main__":
    main()
