"""The control checks on the driver: TCP connect, TLS handshake, DNS query."""

from __future__ import annotations

from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.probes.tlscontext import client_context
from vpnwatch.protocols.controls import DnsCheck, TcpCheck, TlsCheck
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget


def _tls_check(target: TlsTarget) -> TlsCheck:
    return TlsCheck(client_context(target.ca), target.server_name or target.host)


def _dns_check(target: DnsTarget) -> DnsCheck:
    return DnsCheck(target.query, target.record_type)


def _tcp_check(target: TcpTarget) -> TcpCheck:
    return TcpCheck()


TCP: ProbeSpec[TcpTarget] = ProbeSpec(machine=_tcp_check)
TLS: ProbeSpec[TlsTarget] = ProbeSpec(machine=_tls_check)
DNS: ProbeSpec[DnsTarget] = ProbeSpec(machine=_dns_check)
