"""OpenVPN on the driver: an :class:`OpenVPNClient` per probe, over UDP or TCP as the target says.

Stages: ``resolve`` and, over TCP, ``connect`` (the driver's), then ``reset`` (the server answered
our hard reset) → ``tls`` (the server's certificate verified) → ``auth`` (PUSH_REPLY received).
"""

from __future__ import annotations

import functools
import ssl
import time

from vpnwatch import __version__
from vpnwatch.probes.driver import ProbeSpec
from vpnwatch.protocols.machine import Machine, MachineBase
from vpnwatch.protocols.openvpn.client import ClientConfig, OpenVPNClient
from vpnwatch.protocols.openvpn.keymethod import Credentials, peer_info
from vpnwatch.protocols.openvpn.push import PullPolicy
from vpnwatch.protocols.openvpn.tls import PeerRequirements, TlsSettings, build_context
from vpnwatch.protocols.openvpn.wrappers import make_wrapper
from vpnwatch.result import Failure
from vpnwatch.targets.openvpn import OpenVPNTarget

#: The OpenVPN version whose client behaviour the probe follows (sent as IV_VER).
CLIENT_VERSION = "2.6.0"
#: TLS contexts kept for reuse: about as many as a fleet has distinct CA and client certificates.
TLS_CONTEXT_CACHE_SIZE = 256


@functools.lru_cache(maxsize=TLS_CONTEXT_CACHE_SIZE)
def _tls_context(
    ca: str | None, cert: str | None, key: str | None, settings: TlsSettings
) -> ssl.SSLContext:
    """A client context for these PEM texts, built once and shared by every probe that uses them.

    Building one (parsing the CA, loading the client's certificate and key) costs as much CPU as
    the TLS handshake itself, and a provider's servers share one CA and client certificate. A
    shared context resumes no session (a client resumes only when handed one), so every probe still
    runs a full handshake and verifies the server's certificate.
    """
    return build_context(ca, cert, key, settings)


def tls_settings(target: OpenVPNTarget) -> TlsSettings:
    """The target's TLS directives, as the context builder takes them."""
    return TlsSettings(
        version_min=target.tls_version_min,
        or_highest=target.tls_version_min_or_highest,
        version_max=target.tls_version_max,
        cipher=target.tls_cipher,
        ciphersuites=target.tls_ciphersuites,
        groups=target.tls_groups,
        cert_profile=target.tls_cert_profile,
        crl=target.crl_verify,
    )


def tls_limits(target: OpenVPNTarget) -> str:
    """The target's TLS directives that differ from 2.6's defaults, as the file writes them."""
    limits = {
        "tls-version-min": target.tls_version_min if target.tls_version_min != "1.2" else None,
        "tls-version-max": target.tls_version_max,
        "tls-cipher": target.tls_cipher,
        "tls-ciphersuites": target.tls_ciphersuites,
        "tls-groups": target.tls_groups,
        "tls-cert-profile": (
            target.tls_cert_profile if target.tls_cert_profile != "legacy" else None
        ),
    }
    return ", ".join(f"{name} {value}" for name, value in limits.items() if value is not None)


def client_config(target: OpenVPNTarget) -> ClientConfig:
    """The handshake's configuration, derived from the target once per probe.

    Raises ``ssl.SSLError`` when OpenSSL refuses the target's PEM, which passed validation.
    """
    chain = target.cert + (target.extra_certs or "") if target.cert is not None else None
    context = _tls_context(
        target.ca,
        chain,
        target.key.get_secret_value() if target.key else None,
        tls_settings(target),
    )
    credentials = None
    if target.username is not None and target.password is not None:
        credentials = Credentials(target.username, target.password.get_secret_value())
    proto = "UDPv4" if target.proto == "udp" else "TCPv4_CLIENT"
    return ClientConfig(
        tls_context=context,
        peer_requirements=PeerRequirements(
            target.verify_x509_name,
            target.verify_x509_type,
            target.remote_cert_tls == "server",
            frozenset(bytes.fromhex(f.replace(":", "")) for f in target.peer_fingerprint),
        ),
        options=f"V4,dev-type tun,proto {proto},auth {target.auth},key-method 2,tls-client",
        peer_info=peer_info(
            version=CLIENT_VERSION, ciphers=target.data_ciphers, monitor=f"vpnwatch_{__version__}"
        ),
        credentials=credentials,
        tls_crypt_v2=target.tls_wrap == "tls-crypt-v2",
        tcp=target.proto == "tcp",
        tls_limits=tls_limits(target),
        pull_policy=PullPolicy(
            data_ciphers=tuple(target.data_ciphers.split(":")),
            fallback_cipher=target.data_ciphers_fallback,
            allow_compression=target.allow_compression,
            pull_filters=target.pull_filter,
            tun_mtu_max=target.tun_mtu_max,
        ),
    )


class _TlsSetupFailed(MachineBase):
    """A target OpenSSL cannot set TLS up for: it fails as ``tls`` where the handshake would start.

    Its PEM passed validation, so this is the configuration's fault, told once per probe in one
    line like any other failure rather than crashing the worker.
    """

    stages: tuple[str, ...] = OpenVPNClient.stages

    def __init__(self, detail: str) -> None:
        super().__init__()
        self._detail = detail

    def start(self, now: float) -> None:
        super().start(now)
        self._fail(Failure.TLS, self._detail)

    def receive(self, data: bytes, now: float) -> None:
        """Nothing is read: the probe ended at :meth:`start`."""


def _client(target: OpenVPNTarget) -> Machine:
    try:
        config = client_config(target)
    except ssl.SSLError as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        return _TlsSetupFailed(f"TLS setup failed: {reason}")
    key = target.tls_key.get_secret_value() if target.tls_key else None
    wrapper = make_wrapper(target.tls_wrap, key, direction=target.key_direction, digest=target.auth)
    return OpenVPNClient(config, wrapper, unix_time=time.time())


OPENVPN: ProbeSpec[OpenVPNTarget] = ProbeSpec(machine=_client)
