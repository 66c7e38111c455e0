"""The real ``openvpn`` 2.6 client and ``vpnwatch check`` on the same files, against the same servers.

One lab of real OpenVPN servers (certificate kinds and chains, TLS versions, ciphers and groups,
tls-auth/tls-crypt/tls-crypt-v2, CRLs, user/password scripts that accept, reject and defer,
pushed options, IPv6, host names through a resolver the lab runs) and many client files
(inline and file material, chains, pkcs12, encrypted keys, peer-fingerprint, <connection>
blocks, provider-shaped options, TLS directives). Every case runs both clients concurrently,
and every test demands the same verdict and, for a failure, the class the README gives for what
the real client logged (``REAL_CLIENT_FAILURES``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.interop.conftest import VPNWATCH
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.openvpn import (
    CLIENT_NAME,
    SERVER_NAME,
    ClientOutcome,
    OpenVPNLab,
    Pki,
    RunningServer,
    ServerVariant,
    genkey,
    run_real_client,
)
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.lab.resolver import NamespaceResolver

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROBE_TIMEOUT = 6.0
REAL_CLIENT_TIMEOUT = 10.0
#: Cases in flight at once: each runs two clients, and CI has two cores.
CONCURRENCY = 10
PASSWORD = "interop-pass-7"
PASSPHRASE = "key-passphrase-3"
DUAL_PORT = 1300
#: Host names the lab's resolver answers (the IPv6 one has no IPv4 address).
NAME_V4 = "ovpn.interop.test"
NAME_V6 = "ovpn6.interop.test"
NAME_MISSING = "ovpn.interop.invalid"

DEFER = '(sleep 1; echo {verdict} > "$auth_control_file") >/dev/null 2>&1 &\nexit 2\n'
CHECK_PASSWORD = f'[ "$(sed -n 1p "$1")" = probe ] && [ "$(sed -n 2p "$1")" = "{PASSWORD}" ]\n'

S = ServerVariant
VARIANTS = (
    S("udp-plain"),
    S("tcp-plain", proto="tcp"),
    S("udp-tls-auth", wrap="tls-auth"),
    S("tcp-tls-auth", proto="tcp", wrap="tls-auth"),
    S("udp-tls-crypt", wrap="tls-crypt"),
    S("tcp-tls-crypt", proto="tcp", wrap="tls-crypt"),
    S("udp-tls-crypt-v2", wrap="tls-crypt-v2"),
    S("tcp-tls-crypt-v2", proto="tcp", wrap="tls-crypt-v2"),
    S("udp-tls-auth-sha512", wrap="tls-auth", lines=("auth SHA512",)),
    S("udp-tls12", lines=("tls-version-max 1.2",)),
    S("tcp-tls12", proto="tcp", lines=("tls-version-max 1.2",)),
    S("udp-tls13", lines=("tls-version-min 1.3",)),
    S(
        "udp-tls12-aes128",
        lines=("tls-version-max 1.2", "tls-cipher ECDHE-ECDSA-AES128-GCM-SHA256"),
    ),
    S("udp-tls13-chacha", lines=("tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256",)),
    S("udp-groups-p384", lines=("tls-groups secp384r1",)),
    S("udp-int-chain", cert="server-int"),
    S("udp-int-leaf", cert="server-int-leaf"),
    S("udp-crl", lines=("crl-verify {dir}/crl.pem",)),
    S("udp-revoked-server", cert="server-revoked"),
    S("udp-self-signed", cert="server-self"),
    S("udp-rsa1024", cert="server-rsa1024"),
    S("udp-expired", cert="server-expired"),
    S("udp-no-eku", cert="server-noeku"),
    S("udp-password", verify_script=CHECK_PASSWORD),
    S("tcp-password", proto="tcp", verify_script=CHECK_PASSWORD),
    S("udp-defer-accept", verify_script=DEFER.format(verdict=1)),
    S("udp-defer-reject", verify_script=DEFER.format(verdict=0)),
    S("udp-defer-never", verify_script="exit 2\n"),
    S("tcp-defer-accept", proto="tcp", verify_script=DEFER.format(verdict=1)),
    S("udp-push-lz4v2", lines=("compress lz4-v2", 'push "compress lz4-v2"')),
    S("udp-push-comp-lzo-no", lines=("comp-lzo no", 'push "comp-lzo no"')),
    S("udp-push-comp-lzo-yes", lines=("comp-lzo yes", 'push "comp-lzo yes"')),
    S("udp-push-mtu", lines=("tun-mtu 9000", 'push "tun-mtu 9000"')),
    S(
        "udp-push-extras",
        lines=(
            'push "block-outside-dns"',
            'push "redirect-gateway def1"',
            'push "route 198.18.250.0 255.255.255.0"',
            'push "dhcp-option DNS 198.18.250.53"',
        ),
    ),
    S("udp-cbc", lines=("data-ciphers AES-256-CBC",)),
    S("udp-chacha-only", lines=("data-ciphers CHACHA20-POLY1305",)),
    S("udp6-plain", ipv6=True, lines=("server-ipv6 2001:2:0:ff01::/64",)),
    S("tcp6-plain", proto="tcp", ipv6=True),
    S("udp-dual", port=DUAL_PORT),
    S("tcp-dual", proto="tcp", port=DUAL_PORT),
    S(
        "udp-provider",
        wrap="tls-auth",
        lines=(
            "auth SHA512",
            "data-ciphers AES-256-GCM:AES-128-GCM:AES-256-CBC",
            "reneg-sec 0",
            "comp-lzo no",
            'push "comp-lzo no"',
            'push "block-outside-dns"',
            'push "redirect-gateway def1 bypass-dhcp"',
        ),
    ),
)


# -- the lab ------------------------------------------------------------------------------------


@dataclass
class Interop:
    """The running servers, the client material (``pem``), and the resolver's command prefix."""

    ovpn: OpenVPNLab
    pem: dict[str, str]
    files: Path
    resolver: NamespaceResolver


def _der_fingerprint(pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _write_pki(workdir: Path, files: Path) -> tuple[Pki, dict[str, str]]:
    """Every certificate the servers and clients use; returns the clients' PEM by name."""
    root = CertificateAuthority.create("vpnwatch interop root")
    inter = root.intermediate("vpnwatch interop intermediate")
    server = root.issue(SERVER_NAME, server=True)
    client = root.issue(CLIENT_NAME, server=False)
    client_int = inter.issue(f"{CLIENT_NAME}-int", server=False)
    client_revoked = root.issue(f"{CLIENT_NAME}-revoked", server=False)
    server_int = inter.issue(SERVER_NAME, server=True)
    server_revoked = root.issue(SERVER_NAME, server=True)
    self_signed = CertificateAuthority.create(SERVER_NAME)
    crl = root.crl((client_revoked.cert, server_revoked.cert))
    for stem, issued in (
        ("server-int-leaf", server_int),
        ("server-revoked", server_revoked),
        ("server-rsa1024", root.issue(SERVER_NAME, server=True, rsa_bits=1024)),
        ("server-expired", root.issue(SERVER_NAME, server=True, expired=True)),
        ("server-noeku", root.issue(SERVER_NAME, server=True, usage=False)),
    ):
        issued.write(workdir, stem)
    server_int.write(workdir, "server-int")
    (workdir / "server-int.crt").write_text(server_int.cert + inter.cert)
    (workdir / "server-self.crt").write_text(self_signed.cert)
    (workdir / "server-self.key").write_text(self_signed.key_pem)
    (workdir / "crl.pem").write_text(crl)

    # Client-side files referred to by path from the .ovpn files.
    (files / "client-int-chain.crt").write_text(client_int.cert + inter.cert)
    (files / "client-int.key").write_text(client_int.key)
    (files / "askpass.txt").write_text(PASSPHRASE + "\n")
    (files / "up.txt").write_text(f"probe\n{PASSWORD}\n")
    (files / "up-wrong.txt").write_text("probe\nnot-the-password\n")
    int_key = serialization.load_pem_private_key(client_int.key.encode(), None)
    int_cert = x509.load_pem_x509_certificate(client_int.cert.encode())
    cas = [inter.certificate, root.certificate]
    (files / "client.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client",
            int_key,
            int_cert,
            cas,
            serialization.NoEncryption(),  # type: ignore[arg-type]
        )
    )
    (files / "client-pass.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client",
            int_key,  # type: ignore[arg-type]
            int_cert,
            cas,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    encrypted_key = int_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()
    other = CertificateAuthority.create("someone else's CA")
    pem = {
        "ca": root.cert,
        "ca+int": root.cert + inter.cert,
        "other-ca": other.cert,
        "intermediate": inter.cert,
        "client.crt": client.cert,
        "client.key": client.key,
        "client-int.crt": client_int.cert,
        "client-int.key": client_int.key,
        "client-int.key.encrypted": encrypted_key,
        "client-revoked.crt": client_revoked.cert,
        "client-revoked.key": client_revoked.key,
        "crl": crl,
        "self-fingerprint": _der_fingerprint(self_signed.cert),
        "wrong-fingerprint": _der_fingerprint(other.cert),
    }
    return Pki(root.cert, server.cert, server.key, client.cert, client.key), pem


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interop]:
    workdir = tmp_path_factory.mktemp("openvpn-interop-servers")
    files = tmp_path_factory.mktemp("openvpn-interop-clients")
    with Namespace() as namespace:
        pki, pem = _write_pki(workdir, files)
        lab = OpenVPNLab(namespace, workdir, pki)
        records = {NAME_V4: (namespace.ip,), NAME_V6: (namespace.ip6,)}
        with NamespaceResolver(namespace, records) as resolver:
            lab.start(VARIANTS, first_port=1200)
            yield Interop(lab, pem, files, resolver)


# -- client files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One client file for one server, and whether the real client connects with it.

    ``lines`` are added to the file, formatted with the lab's PEM texts (``{ca}``,
    ``{intermediate}``…); ``ca``/``cert`` name the PEM of the default ``<ca>`` and
    ``<cert>``/``<key>`` blocks (None: no block).
    """

    server: str
    ok: bool
    lines: tuple[str, ...] = ()
    ca: str | None = "ca"
    cert: str | None = "client"
    wrap: Literal["server", "none", "wrong"] = "server"
    key_direction: bool = True
    #: How the file gives the server's username and password, when the server asks for them.
    credentials: Literal["file", "inline", "wrong"] = "file"
    #: A name the lab's resolver answers instead of the server's address.
    host: str | None = None
    port: int | None = None
    remote_cert_tls: bool = True
    #: Replace the file's single ``remote`` line (several remotes, <connection> blocks).
    remotes: tuple[str, ...] | None = None


def _block(tag: str, text: str) -> list[str]:
    return [f"<{tag}>", text.strip(), f"</{tag}>"]


def write_client(interop: Interop, name: str, case: Case) -> Path:
    server: RunningServer = interop.ovpn.servers[case.server]
    variant = server.variant
    pem = interop.pem
    lines = ["client", "dev tun", "nobind", "persist-key", "verb 3"]
    if case.remotes is None:
        lines += [
            f"proto {variant.proto}",
            f"remote {case.host or server.host} {case.port or server.port}",
        ]
    else:
        lines += [_fill(line, _places(interop)) for line in case.remotes]
    if case.remote_cert_tls:
        lines.append("remote-cert-tls server")
    if not variant.requires_client_cert:
        if case.credentials == "inline":
            lines += ["<auth-user-pass>", "probe", PASSWORD, "</auth-user-pass>"]
        else:
            lines.append(
                f"auth-user-pass {'up-wrong.txt' if case.credentials == 'wrong' else 'up.txt'}"
            )
    if case.ca is not None:
        lines += _block("ca", pem[case.ca])
    if case.cert is not None:
        lines += _block("cert", pem[f"{case.cert}.crt"]) + _block("key", pem[f"{case.cert}.key"])
    if variant.wrap != "none" and case.wrap != "none":
        key = server.client_wrap_key or ""
        if case.wrap == "wrong":
            kind = "tls-crypt-v2-client" if variant.wrap == "tls-crypt-v2" else "secret"
            other = interop.files / f"{name}-other.key"
            if variant.wrap == "tls-crypt-v2":
                genkey("tls-crypt-v2-server", interop.files / f"{name}-v2-server.key")
                key = genkey(
                    kind, other, "--tls-crypt-v2", str(interop.files / f"{name}-v2-server.key")
                )
            else:
                key = genkey(kind, other)
        if variant.wrap == "tls-auth" and case.key_direction:
            lines.append("key-direction 1")
        lines += _block(variant.wrap, key)
    lines += [_fill(line, pem) for line in case.lines]
    path = interop.files / f"{name}.ovpn"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _fill(line: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        line = line.replace("{" + key + "}", value.strip())
    return line


def _places(interop: Interop) -> dict[str, str]:
    servers = interop.ovpn.servers
    return {name.replace("-", "_"): f"{s.host} {s.port}" for name, s in servers.items()}


CASES: dict[str, Case] = {
    # transports and wrapping keys
    "udp-plain": Case("udp-plain", ok=True),
    "tcp-plain": Case("tcp-plain", ok=True),
    "udp-tls-auth": Case("udp-tls-auth", ok=True),
    "tcp-tls-auth": Case("tcp-tls-auth", ok=True),
    "udp-tls-crypt": Case("udp-tls-crypt", ok=True),
    "tcp-tls-crypt": Case("tcp-tls-crypt", ok=True),
    "udp-tls-crypt-v2": Case("udp-tls-crypt-v2", ok=True),
    "tcp-tls-crypt-v2": Case("tcp-tls-crypt-v2", ok=True),
    "tls-auth-sha512": Case("udp-tls-auth-sha512", ok=True, lines=("auth SHA512",)),
    "tls-auth-sha512-default-digest": Case("udp-tls-auth-sha512", ok=False),
    "tls-auth-missing": Case("udp-tls-auth", ok=False, wrap="none"),
    "tls-auth-wrong-key": Case("udp-tls-auth", ok=False, wrap="wrong"),
    "tls-auth-no-key-direction": Case("udp-tls-auth", ok=False, key_direction=False),
    "tls-crypt-wrong-key-tcp": Case("tcp-tls-crypt", ok=False, wrap="wrong"),
    "tls-crypt-v2-wrong-key": Case("udp-tls-crypt-v2", ok=False, wrap="wrong"),
    # certificates and chains
    "server-chain-root-ca": Case("udp-int-chain", ok=True),
    "server-no-chain-root-ca": Case("udp-int-leaf", ok=False),
    "server-no-chain-full-ca": Case("udp-int-leaf", ok=True, ca="ca+int"),
    "client-chain-extra-certs": Case(
        "udp-plain", ok=True, cert="client-int", lines=("<extra-certs>", "{intermediate}", "</extra-certs>")
    ),
    "client-chain-in-cert-file": Case(
        "udp-plain", ok=True, cert=None, lines=("cert client-int-chain.crt", "key client-int.key")
    ),
    "client-chain-missing": Case("udp-plain", ok=False, cert="client-int"),
    "pkcs12": Case("udp-plain", ok=True, cert=None, lines=("pkcs12 client.p12",)),
    "pkcs12-askpass-no-ca": Case(
        "udp-plain", ok=True, ca=None, cert=None, lines=("pkcs12 client-pass.p12", "askpass askpass.txt")
    ),
    "encrypted-key-askpass": Case(
        "udp-plain",
        ok=True,
        cert=None,
        lines=(
            "<cert>", "{client-int.crt}", "</cert>", "<key>", "{client-int.key.encrypted}", "</key>",
            "<extra-certs>", "{intermediate}", "</extra-certs>", "askpass askpass.txt",
        ),
    ),
    "crl-good-client": Case("udp-crl", ok=True),
    "crl-revoked-client": Case("udp-crl", ok=False, cert="client-revoked"),
    "client-crl-revoked-server": Case(
        "udp-revoked-server", ok=False, lines=("<crl-verify>", "{crl}", "</crl-verify>")
    ),
    "revoked-server-without-crl": Case("udp-revoked-server", ok=True),
    "peer-fingerprint-self-signed": Case(
        "udp-self-signed", ok=True, ca=None, remote_cert_tls=False,
        lines=("peer-fingerprint {self-fingerprint}",),
    ),
    "peer-fingerprint-block": Case(
        "udp-self-signed", ok=True, ca=None, remote_cert_tls=False,
        lines=("<peer-fingerprint>", "{wrong-fingerprint}", "{self-fingerprint}", "</peer-fingerprint>"),
    ),
    "peer-fingerprint-wrong": Case(
        "udp-self-signed", ok=False, ca=None, remote_cert_tls=False,
        lines=("peer-fingerprint {wrong-fingerprint}",),
    ),
    "self-signed-with-ca": Case("udp-self-signed", ok=False, remote_cert_tls=False),
    "rsa1024-legacy-profile": Case("udp-rsa1024", ok=True),
    "rsa1024-preferred-profile": Case("udp-rsa1024", ok=False, lines=("tls-cert-profile preferred",)),
    "expired-server": Case("udp-expired", ok=False),
    "no-eku-remote-cert-tls": Case("udp-no-eku", ok=False),
    "no-eku-unchecked": Case("udp-no-eku", ok=True, remote_cert_tls=False),
    "wrong-ca": Case("udp-plain", ok=False, ca="other-ca"),
    "verify-x509-name": Case("tcp-plain", ok=True, lines=(f"verify-x509-name {SERVER_NAME} name",)),
    "verify-x509-name-wrong": Case("tcp-plain", ok=False, lines=("verify-x509-name impostor name",)),
    # TLS directives
    "tls-version-min-1.3-vs-1.2": Case("udp-tls12", ok=False, lines=("tls-version-min 1.3",)),
    "tls-version-min-1.3-vs-1.2-tcp": Case("tcp-tls12", ok=False, lines=("tls-version-min 1.3",)),
    "tls-1.2-server": Case("udp-tls12", ok=True),
    "tls-version-max-1.2-vs-1.3": Case("udp-tls13", ok=False, lines=("tls-version-max 1.2",)),
    "tls-1.3-server": Case("udp-tls13", ok=True, lines=("tls-version-min 1.3 or-highest",)),
    "tls-cipher-shared": Case(
        "udp-tls12-aes128", ok=True, lines=("tls-cipher ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",)
    ),
    "tls-cipher-disjoint": Case(
        "udp-tls12-aes128", ok=False, lines=("tls-cipher ECDHE-ECDSA-AES256-GCM-SHA384",)
    ),
    "tls-ciphersuites-default": Case("udp-tls13-chacha", ok=True),
    "tls-ciphersuites-disjoint": Case(
        "udp-tls13-chacha", ok=False, lines=("tls-ciphersuites TLS_AES_256_GCM_SHA384",)
    ),
    "tls-groups-default": Case("udp-groups-p384", ok=True),
    "tls-groups-disjoint": Case("udp-groups-p384", ok=False, lines=("tls-groups X25519",)),
    # user and password
    "password-file": Case("udp-password", ok=True, cert=None),
    "password-inline": Case("udp-password", ok=True, cert=None, credentials="inline"),
    "password-wrong": Case("udp-password", ok=False, cert=None, credentials="wrong"),
    "password-tcp": Case("tcp-password", ok=True, cert=None),
    "deferred-accept": Case("udp-defer-accept", ok=True, cert=None),
    "deferred-reject": Case("udp-defer-reject", ok=False, cert=None),
    "deferred-never": Case("udp-defer-never", ok=False, cert=None),
    "deferred-accept-tcp": Case("tcp-defer-accept", ok=True, cert=None),
    # pushed options
    "push-lz4-v2-refused": Case("udp-push-lz4v2", ok=False),
    "push-lz4-v2-allowed": Case("udp-push-lz4v2", ok=True, lines=("allow-compression asym",)),
    "push-lz4-v2-client-comp-lzo-no": Case("udp-push-lz4v2", ok=False, lines=("comp-lzo no",)),
    "push-lz4-v2-client-compress-stub": Case("udp-push-lz4v2", ok=True, lines=("compress",)),
    "push-lz4-v2-client-stub-v2": Case("udp-push-lz4v2", ok=True, lines=("compress stub-v2",)),
    "push-comp-lzo-no": Case("udp-push-comp-lzo-no", ok=True),
    "push-comp-lzo-no-client-too": Case("udp-push-comp-lzo-no", ok=True, lines=("comp-lzo no",)),
    "push-comp-lzo-yes-refused": Case("udp-push-comp-lzo-yes", ok=False),
    "push-comp-lzo-yes-client-compresses": Case("udp-push-comp-lzo-yes", ok=True, lines=("comp-lzo yes",)),
    "push-tun-mtu-too-large": Case("udp-push-mtu", ok=False),
    "push-tun-mtu-allowed": Case("udp-push-mtu", ok=True, lines=("tun-mtu-max 9000",)),
    "push-extras": Case("udp-push-extras", ok=True),
    "pull-filter-reject": Case("udp-push-extras", ok=False, lines=('pull-filter reject "redirect-gateway"',)),
    "pull-filter-ignore": Case(
        "udp-push-extras", ok=True, lines=('pull-filter ignore "block-outside-dns"', "pull-filter accept route")
    ),
    "cbc-server-default-client": Case("udp-cbc", ok=False),
    # 2.6 no longer offers --cipher: the server finds no shared cipher and says AUTH_FAILED.
    "cbc-server-cipher": Case("udp-cbc", ok=False, lines=("cipher AES-256-CBC",)),
    "cbc-server-data-ciphers": Case(
        "udp-cbc", ok=True, lines=("data-ciphers AES-256-GCM:AES-256-CBC",)
    ),
    "chacha-server-default-client": Case("udp-chacha-only", ok=True),
    "chacha-server-gcm-client": Case("udp-chacha-only", ok=False, lines=("data-ciphers AES-256-GCM",)),
    # IPv6, host names, ports
    "udp6": Case("udp6-plain", ok=True),
    "tcp6": Case("tcp6-plain", ok=True),
    "host-name": Case("udp-plain", ok=True, host=NAME_V4),
    "host-name-udp6": Case("udp6-plain", ok=True, host=NAME_V6, lines=("proto udp6",)),
    "host-name-missing": Case("udp-plain", ok=False, host=NAME_MISSING),
    "closed-udp-port": Case("udp-plain", ok=False, port=1100),
    "closed-tcp-port": Case("tcp-plain", ok=False, port=1100),
    # files with several targets: every one must be ok where the real client connects
    "same-port-udp-and-tcp": Case(
        "udp-dual",
        ok=True,
        remotes=("remote {udp_dual} udp", "remote {tcp_dual} tcp-client", "remote-random"),
    ),
    "connection-blocks": Case(
        "udp-plain",
        ok=True,
        remotes=(
            "<connection>", "remote {udp_plain}", "proto udp", "</connection>",
            "<connection>", "remote {tcp_plain}", "proto tcp-client", "</connection>",
        ),
    ),
    "provider-shaped": Case(
        "udp-provider",
        ok=True,
        lines=(
            "remote-random", "resolv-retry infinite", "auth SHA512", "cipher AES-256-CBC",
            "data-ciphers-fallback AES-256-CBC", "reneg-sec 0", "comp-lzo no", "tun-mtu 1500",
            "mssfix 1450", "fast-io", "setenv CLIENT_CERT 0", f"verify-x509-name {SERVER_NAME} name",
            'pull-filter ignore "redirect-gateway"', "mute-replay-warnings", "persist-tun",
        ),
    ),
}  # fmt: skip


# -- running both -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    records: list[dict[str, Any]]
    real: ClientOutcome
    config: Path


async def vpnwatch_check(config: Path, prefix: list[str]) -> list[dict[str, Any]]:
    """``vpnwatch check --json`` on ``config``: one record per target of the file."""
    proc = await asyncio.create_subprocess_exec(
        *prefix, VPNWATCH, "check", "--json", "--timeout", str(PROBE_TIMEOUT), str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode in (0, 1), f"vpnwatch check exited {proc.returncode}: {err.decode()}"
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def outcomes(interop: Interop) -> dict[str, Outcome]:
    """Every case, both clients, concurrently (a bounded number at a time)."""

    async def run_all() -> dict[str, Outcome]:
        limit = asyncio.Semaphore(CONCURRENCY)

        async def run(name: str, case: Case) -> tuple[str, Outcome]:
            config = write_client(interop, name, case)
            prefix = interop.resolver.prefix if case.host is not None else []
            async with limit:
                records, real = await asyncio.gather(
                    vpnwatch_check(config, prefix),
                    run_real_client(config, REAL_CLIENT_TIMEOUT, prefix),
                )
            return name, Outcome(records, real, config)

        return dict(await asyncio.gather(*(run(name, case) for name, case in CASES.items())))

    return asyncio.run(run_all())


@pytest.mark.parametrize("name", CASES)
def test_vpnwatch_agrees_with_the_real_client(outcomes: dict[str, Outcome], name: str) -> None:
    case, outcome = CASES[name], outcomes[name]
    real = outcome.real
    assert real.ok == case.ok, f"the real client did not do what the case expects:\n{real.log}"
    assert outcome.records, "vpnwatch reported no target"
    for record in outcome.records:
        assert "error" not in record, record
        assert record["ok"] == real.ok, f"{record}\nthe real client:\n{real.log}"
        if not real.ok:
            assert record["failure"] in real.failures, f"{record}\nthe real client:\n{real.log}"
            assert record["detail"], record
        if name in ACTIONABLE:
            assert ACTIONABLE[name] in record["detail"], record
        text = json.dumps(record)
        assert PASSWORD not in text and PASSPHRASE not in text


#: The issue's acceptance cases, and what their detail must tell a person.
ACTIONABLE = {
    "client-chain-extra-certs": "PUSH_REPLY received",
    "client-chain-missing": "<extra-certs>",
    "push-lz4-v2-refused": "allow-compression",
    "push-tun-mtu-too-large": "tun-mtu-max",
    "tls-version-min-1.3-vs-1.2": "tls-version-min 1.3",
    "tls-version-min-1.3-vs-1.2-tcp": "tls-version-min 1.3",
    "tls-version-max-1.2-vs-1.3": "tls-version-max 1.2",
    "deferred-never": "authentication of us never completed",
    "host-name-missing": "did not resolve",
}


def test_config_check_imports_every_file(interop: Interop, outcomes: dict[str, Outcome]) -> None:
    """Every client file of the suite, included by one YAML, imports: one line per target."""
    config = interop.files / "vpnwatch.yml"
    config.write_text('include: ["*.ovpn"]\n')
    proc = subprocess.run(
        [VPNWATCH, "config", "check", str(config)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    targets = sum(len(outcome.records) for outcome in outcomes.values())
    assert f": {targets} targets, ok" in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr
    assert PASSPHRASE not in proc.stdout + proc.stderr


def test_enough_cases() -> None:
    servers = {case.server for case in CASES.values()}
    assert len(VARIANTS) >= 35 and len(servers) >= 35
    assert len(CASES) >= 50
