"""The control checks on the driver: TCP connect, TLS handshake, DNS query."""

from __future__ import annotations

import functools
import ssl

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.controls import DnsCheck, TcpCheck, TlsCheck
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget


@functools.lru_cache(maxsize=64)
def _context(ca: str | None) -> ssl.SSLContext:
    """One context per trust store: parsing the CA costs as much as the handshake."""
    return ssl.create_default_context(cadata=ca)


def _tls_check(target: TlsTarget) -> TlsCheck:
    return TlsCheck(_context(target.ca), target.server_name or target.host)


def _dns_check(target: DnsTarget) -> DnsCheck:
    return DnsCheck(target.query, target.record_type)


def _tcp_check(target: TcpTarget) -> TcpCheck:
    return TcpCheck()


TCP: ProbeSpec[TcpTarget] = ProbeSpec(machine=_tcp_check)
TLS: ProbeSpec[TlsTarget] = ProbeSpec(machine=_tls_check)
DNS: ProbeSpec[DnsTarget] = ProbeSpec(machine=_dns_check)
