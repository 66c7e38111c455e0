"""Probe an OpenVPN server: drive :class:`OpenVPNClient` over UDP or TCP and stamp its stages.

Stages: ``connect`` (TCP only) → ``reset`` (the server answered our hard reset) → ``tls`` (the
server's certificate verified) → ``auth`` (PUSH_REPLY received). A failure is recorded at the stage
that was being attempted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from typing import Protocol

from vpnwatch import __version__
from vpnwatch.probes.net import UdpChannel, connect_tcp
from vpnwatch.protocols.openvpn.client import (
    ClientConfig,
    DropCounts,
    FailureReason,
    HandshakeFailed,
    OpenVPNClient,
    PushReplyReceived,
    ResetAcknowledged,
    TlsEstablished,
)
from vpnwatch.protocols.openvpn.keymethod import Credentials, peer_info
from vpnwatch.protocols.openvpn.packets import PacketError, TcpDeframer, frame_tcp
from vpnwatch.protocols.openvpn.tls import PeerRequirements, build_context
from vpnwatch.protocols.openvpn.wrappers import make_wrapper
from vpnwatch.result import Failure, ProbeFailed, Result, Timeline, failure_from_oserror
from vpnwatch.targets.openvpn import OpenVPNTarget

log = logging.getLogger(__name__)

PROTOCOL = "openvpn"
#: The OpenVPN version whose client behaviour the probe follows (sent as IV_VER).
CLIENT_VERSION = "2.6.0"
_READ_SIZE = 65536
#: How long to wait for a packet when no timer is pending (the probe's timeout ends it sooner).
_IDLE = 3600.0
_FAILURES = {
    FailureReason.CERTIFICATE: Failure.TLS_CERT,
    FailureReason.TLS: Failure.TLS,
    FailureReason.AUTH: Failure.AUTH,
    FailureReason.PROTOCOL: Failure.PROTOCOL,
}


class _Link(Protocol):
    """One transport to the server, carrying whole control packets."""

    def send(self, packet: bytes) -> None: ...

    async def receive(self, delay: float) -> list[bytes]:
        """Packets that arrived within ``delay`` seconds (none if the delay passed)."""
        ...

    def close(self) -> None: ...


class _UdpLink:
    def __init__(self, channel: UdpChannel) -> None:
        self._channel = channel

    @classmethod
    async def open(cls, host: str, port: int) -> _UdpLink:
        return cls(await UdpChannel.open(host, port))

    def send(self, packet: bytes) -> None:
        self._channel.send(packet)

    async def receive(self, delay: float) -> list[bytes]:
        try:
            async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can swallow a cancel
                return [await self._channel.receive()]
        except TimeoutError:
            return []

    def close(self) -> None:
        self._channel.close()


class _TcpLink:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._deframer = TcpDeframer()

    @classmethod
    async def open(cls, host: str, port: int) -> _TcpLink:
        return cls(*await connect_tcp(host, port))

    def send(self, packet: bytes) -> None:
        self._writer.write(frame_tcp(packet))

    async def receive(self, delay: float) -> list[bytes]:
        try:
            async with asyncio.timeout(delay):
                data = await self._reader.read(_READ_SIZE)
        except TimeoutError:
            return []
        if not data:
            raise ProbeFailed(Failure.EOF, "server closed the connection")
        try:
            return self._deframer.feed(data)
        except PacketError as exc:
            raise ProbeFailed(Failure.PROTOCOL, str(exc)) from None

    def close(self) -> None:
        self._writer.close()


#: TLS contexts kept for reuse: about as many as a fleet has distinct CA and client certificates.
TLS_CONTEXT_CACHE_SIZE = 256


@functools.lru_cache(maxsize=TLS_CONTEXT_CACHE_SIZE)
def _tls_context(ca: str, cert: str | None, key: str | None) -> ssl.SSLContext:
    """A client context for these PEM texts, built once and shared by every probe that uses them.

    Building one (parsing the CA, loading the client's certificate and key) costs as much CPU as
    the TLS handshake itself, and a provider's servers share one CA and client certificate. A
    shared context resumes no session (a client resumes only when handed one), so every probe still
    runs a full handshake and verifies the server's certificate.
    """
    return build_context(ca, cert, key)


def client_config(target: OpenVPNTarget) -> ClientConfig:
    """The handshake's configuration, derived from the target once per probe."""
    context = _tls_context(
        target.ca, target.cert, target.key.get_secret_value() if target.key else None
    )
    credentials = None
    if target.username is not None and target.password is not None:
        credentials = Credentials(target.username, target.password.get_secret_value())
    proto = "UDPv4" if target.proto == "udp" else "TCPv4_CLIENT"
    return ClientConfig(
        tls_context=context,
        peer_requirements=PeerRequirements(
            target.verify_x509_name, target.verify_x509_type, target.remote_cert_tls == "server"
        ),
        options=f"V4,dev-type tun,proto {proto},auth {target.auth},key-method 2,tls-client",
        peer_info=peer_info(
            version=CLIENT_VERSION, ciphers=target.data_ciphers, monitor=f"vpnwatch_{__version__}"
        ),
        credentials=credentials,
        tls_crypt_v2=target.tls_wrap == "tls-crypt-v2",
    )


def _new_client(target: OpenVPNTarget, now: float) -> OpenVPNClient:
    key = target.tls_key.get_secret_value() if target.tls_key else None
    wrapper = make_wrapper(target.tls_wrap, key, direction=target.key_direction, digest=target.auth)
    return OpenVPNClient(client_config(target), wrapper, now=now, unix_time=time.time())


class _Stages:
    """The stage being attempted, advanced by the client's events."""

    def __init__(self, timeline: Timeline, first: str) -> None:
        self.timeline = timeline
        self.current = first

    def reached(self, stage: str, following: str) -> None:
        self.timeline.reached(stage)
        self.current = following


def _silence(drops: DropCounts) -> tuple[Failure, str]:
    """Classify a handshake that ran out of time, using what was dropped on the way."""
    if drops.unauthenticated:
        return Failure.AUTH, (
            f"{drops.unauthenticated} replies failed tls-auth/tls-crypt authentication"
            " (wrong key or key-direction?)"
        )
    if drops.malformed:
        return Failure.PROTOCOL, f"{drops.malformed} malformed replies, no valid one"
    return Failure.TIMEOUT, "no valid reply in time"


async def _handshake(
    target: OpenVPNTarget, client: OpenVPNClient, stages: _Stages, link: _Link
) -> Result:
    loop = asyncio.get_running_loop()
    while True:
        for packet in client.packets_to_send(loop.time()):
            link.send(packet)
        while (event := client.next_event()) is not None:
            if isinstance(event, ResetAcknowledged):
                stages.reached("reset", "tls")
            elif isinstance(event, TlsEstablished):
                log.debug("%s: TLS established (%s)", target.name, event.version)
                stages.reached("tls", "auth")
            elif isinstance(event, PushReplyReceived):
                stages.reached("auth", "auth")
                client.goodbye()
                for packet in client.packets_to_send(loop.time()):
                    link.send(packet)
                return stages.timeline.success()
            elif isinstance(event, HandshakeFailed):
                raise ProbeFailed(_FAILURES[event.reason], event.detail)
        wake = client.timer()
        delay = _IDLE if wake is None else max(0.0, wake - loop.time())
        for packet in await link.receive(delay):
            client.receive(packet, loop.time())


async def _open_link(target: OpenVPNTarget) -> _Link:
    if target.proto == "tcp":
        return await _TcpLink.open(target.host, target.port)
    return await _UdpLink.open(target.host, target.port)


async def probe_openvpn(target: OpenVPNTarget, timeout: float) -> Result:
    """Handshake with ``target`` as far as a real client would; never raises for network events."""
    timeline = Timeline(target.name, PROTOCOL)
    stages = _Stages(timeline, "connect" if target.proto == "tcp" else "reset")
    try:
        client = _new_client(target, asyncio.get_running_loop().time())
    except ssl.SSLError as exc:  # the target's PEM passed validation but OpenSSL refuses it
        return timeline.failed(Failure.TLS, stages.current, f"TLS setup failed: {exc.reason}")
    link: _Link | None = None
    try:
        async with asyncio.timeout(timeout):
            link = await _open_link(target)
            if target.proto == "tcp":
                stages.reached("connect", "reset")
            return await _handshake(target, client, stages, link)
    except ProbeFailed as exc:
        return timeline.failed(exc.failure, stages.current, exc.detail)
    except TimeoutError:
        failure, detail = _silence(client.dropped)
        return timeline.failed(failure, stages.current, detail)
    except OSError as exc:
        failure = failure_from_oserror(exc)
        return timeline.failed(failure, stages.current, exc.strerror or failure.value)
    finally:
        if link is not None:
            link.close()
