"""Drivers for the control probes: TCP connect, TLS handshake, DNS query."""

from __future__ import annotations

import secrets
import ssl

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from vpnwatch.probes.net import UdpChannel, close_writer, connect_tcp, guarded
from vpnwatch.result import Failure, ProbeFailed, Result, Timeline
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget


async def probe_tcp(target: TcpTarget, timeout: float) -> Result:
    timeline = Timeline(target.name, target.protocol, plan=("connect",))

    async def body() -> str:
        _, writer = await connect_tcp(target.host, target.port)
        timeline.reached("connect")
        await close_writer(writer)
        return ""

    return await guarded(timeline, timeout, body)


async def probe_tls(target: TlsTarget, timeout: float) -> Result:
    timeline = Timeline(target.name, target.protocol, plan=("connect", "tls"))
    context = ssl.create_default_context(cadata=target.ca)
    server_name = target.server_name or target.host

    async def body() -> str:
        _, writer = await connect_tcp(target.host, target.port)
        timeline.reached("connect")
        try:
            await writer.start_tls(context, server_hostname=server_name)
        except BaseException as exc:
            # A stream whose handshake failed or was cancelled never finishes closing politely.
            writer.transport.abort()
            if isinstance(exc, ssl.SSLCertVerificationError):
                reason = exc.verify_message or "certificate did not verify"
                raise ProbeFailed(Failure.TLS_CERT, reason) from None
            if isinstance(exc, ssl.SSLError):
                raise ProbeFailed(Failure.TLS, exc.reason or str(exc)) from None
            raise
        await close_writer(writer)
        timeline.reached("tls")
        return ""

    return await guarded(timeline, timeout, body)


async def probe_dns(target: DnsTarget, timeout: float) -> Result:
    timeline = Timeline(target.name, target.protocol, plan=("answer",))
    query = dns.message.make_query(target.query, target.record_type)
    query.id = secrets.randbelow(1 << 16)  # an off-path spoofer must guess it

    async def body() -> str:
        channel = await UdpChannel.open(target.host, target.port)
        try:
            channel.send(query.to_wire())
            reply = await _matching_reply(channel, query)
        finally:
            channel.close()
        rcode = reply.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProbeFailed(Failure.PROTOCOL, f"the resolver answered {dns.rcode.to_text(rcode)}")
        timeline.reached("answer")
        return f"{dns.rcode.to_text(rcode)}, {sum(len(r) for r in reply.answer)} records"

    return await guarded(timeline, timeout, body)


async def _matching_reply(channel: UdpChannel, query: dns.message.Message) -> dns.message.Message:
    """Wait for the reply to ``query``; stray or malformed datagrams are ignored meanwhile."""
    while True:
        wire = await channel.receive()
        try:
            reply = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            continue
        if reply.flags & dns.flags.QR and query.is_response(reply):
            return reply
