"""AnyConnect on the driver: an :class:`AnyConnectClient` per probe, over TCP.

Stages: ``resolve`` and ``connect`` (the driver's), then ``tls`` (the server's certificate
verified, or its key pinned) → ``auth`` (the login returned a session cookie) → ``tunnel``
(``CONNECT`` answered ``200 CONNECTED`` and a CSTP DPD request answered).
"""

from __future__ import annotations

import functools
import ssl

from vpnwatch import __version__
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.anyconnect.client import AnyConnectClient, pin_check
from vpnwatch.protocols.anyconnect.session import CLIENT_VERSION, AnyConnectSession, Login
from vpnwatch.protocols.tls import TlsChannel, pem_file
from vpnwatch.targets.anyconnect import AnyConnectTarget

#: TLS contexts kept for reuse: about as many as a fleet has distinct CAs and client certificates.
TLS_CONTEXT_CACHE_SIZE = 256
#: What the probe calls itself: openconnect's agent string (servers adapt their answers to the
#: client they recognise), then vpnwatch's own name, so a server's log tells probes apart.
USER_AGENT = f"Open AnyConnect VPN Agent {CLIENT_VERSION} vpnwatch/{__version__}"


@functools.lru_cache(maxsize=TLS_CONTEXT_CACHE_SIZE)
def _tls_context(
    ca: str | None, cert: str | None, key: str | None, *, pinned: bool
) -> ssl.SSLContext:
    """A client context, built once per CA and client certificate: parsing them costs as much
    CPU as the handshake. With a pin the chain is not checked: the pin is the whole check, as
    with ``openconnect --servercert``."""
    context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pinned:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        with pem_file(cert) as cert_path, pem_file(key) as key_path:
            context.load_cert_chain(cert_path, key_path)
    return context


def tls_channel(target: AnyConnectTarget) -> TlsChannel:
    """The TLS client for one probe: the target's CA (or the system's) and name, or its pin."""
    key = target.key.get_secret_value() if target.key else None
    context = _tls_context(target.ca, target.cert, key, pinned=target.servercert is not None)
    if target.servercert is not None:
        return TlsChannel(context, server_hostname=target.host, check=pin_check(target.servercert))
    return TlsChannel(context, server_hostname=target.host)


def login(target: AnyConnectTarget) -> Login:
    """What the probe tells the gateway inside TLS."""
    return Login(
        host=target.host,
        port=target.port,
        path=target.path,
        group=target.group,
        username=target.username,
        password=target.password.get_secret_value() if target.password else None,
        user_agent=USER_AGENT,
    )


def _client(target: AnyConnectTarget) -> AnyConnectClient:
    return AnyConnectClient(tls_channel(target), AnyConnectSession(login(target)))


ANYCONNECT: ProbeSpec[AnyConnectTarget] = ProbeSpec(machine=_client)
