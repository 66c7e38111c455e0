"""The lab's AnyConnect gateway: the real Debian ``ocserv``, and the real ``openconnect`` client.

:class:`OcservServer` runs ocserv in a lab namespace with its own configuration, PKI, password
file, pid and socket files (nothing under /etc or /run), accepting two logins: a password
(``ocpasswd`` file, in group ``lab`` of a group list, in two form rounds: username, then
password) and a client certificate from its CA. Sessions get a tunnel device (ocserv needs
/dev/net/tun) and an address from a pool in 198.18.0.0/15, which this host routes nowhere: the
lab installs an ``unreachable`` route for it while it runs.

:func:`run_real_client` runs ``openconnect --authenticate`` (a login without a tunnel device),
so tests can demand that it and the probe agree on every lab case.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vpnwatch.lab.netns import LabError, Namespace, run
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.lab.process import LabService
from vpnwatch.protocols.anyconnect.client import public_key_pin

DEFAULT_PORT = 4443
USERNAME = "probe"
#: The groups the server lists; the user is a member of the first.
GROUPS = ("lab", "other")
SERVER_NAME = "vpnwatch-lab-anyconnect"
#: The client certificate's common name, which ocserv takes as the username.
CLIENT_NAME = "vpnwatch-lab-anyconnect-client"
_READY = "listening (TCP)"
_STARTUP = 15.0


@dataclass
class OcservServer(LabService["OcservServer"]):
    """ocserv inside ``namespace``, its files under ``workdir``; use as a context manager."""

    namespace: Namespace
    workdir: Path
    port: int = DEFAULT_PORT
    #: The password of :data:`USERNAME`, fresh each run.
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    ca: str = field(init=False, repr=False)
    client_cert: str = field(init=False, repr=False)
    client_key: str = field(init=False, repr=False)
    server_cert: str = field(init=False, repr=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    _sockets: Path | None = field(init=False, default=None)

    @property
    def host(self) -> str:
        return self.namespace.ip

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    @property
    def pool(self) -> str:
        """The tunnel addresses: the upper half of the slot's /24, whose lower end is the link."""
        return f"198.18.{self.namespace.slot}.128/25"

    @property
    def pin(self) -> str:
        """The server key's ``pin-sha256:``, as ``openconnect`` prints it."""
        certificate = x509.load_pem_x509_certificate(self.server_cert.encode())
        return public_key_pin(certificate.public_bytes(serialization.Encoding.DER))

    @property
    def log(self) -> Path:
        return self.workdir / "ocserv.log"

    def start(self) -> OcservServer:
        ca = CertificateAuthority.create("vpnwatch lab AnyConnect CA")
        server = ca.issue(SERVER_NAME, server=True, sans=(self.host,))
        client = ca.issue(CLIENT_NAME, server=False)
        self.ca, self.server_cert = ca.cert, server.cert
        self.client_cert, self.client_key = client.cert, client.key
        (self.workdir / "ca.pem").write_text(ca.cert)
        server.write(self.workdir, "server")
        run(
            ["ocpasswd", "-c", str(self.workdir / "ocpasswd"), "-g", GROUPS[0], USERNAME],
            input_=f"{self.password}\n{self.password}\n",
        )
        # ocserv's workers run as nobody and reach the security module through its socket, so
        # the sockets live in a directory they may enter (the test's own is root's alone).
        self._sockets = Path(tempfile.mkdtemp(prefix="vpnwatch-ocserv-"))
        self._sockets.chmod(0o755)
        config = self.workdir / "ocserv.conf"
        config.write_text(self._config())
        run(["ip", "route", "add", "unreachable", self.pool])
        self._process = self.namespace.spawn(
            ["ocserv", "--foreground", "--debug", "1", "--config", str(config)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self._await_ready()
        return self

    def _config(self) -> str:
        directory, sockets = self.workdir, self._sockets
        lines = [
            f'auth = "plain[passwd={directory / "ocpasswd"}]"',
            'enable-auth = "certificate"',
            f"listen-host = {self.host}",
            f"tcp-port = {self.port}",
            "run-as-user = nobody",
            "run-as-group = nogroup",
            f"socket-file = {sockets}/sec-mod.sock",
            f"occtl-socket-file = {sockets}/occtl.sock",
            f"pid-file = {directory / 'ocserv.pid'}",
            f"server-cert = {directory / 'server.crt'}",
            f"server-key = {directory / 'server.key'}",
            f"ca-cert = {directory / 'ca.pem'}",
            "cert-user-oid = 2.5.4.3",
            "isolate-workers = false",
            "max-clients = 64",
            "max-same-clients = 0",
            # Tests log in with wrong passwords on purpose; a ban would fail the next case.
            "max-ban-score = 0",
            "keepalive = 300",
            "dpd = 60",
            "mobile-dpd = 300",
            "try-mtu-discovery = false",
            'tls-priorities = "NORMAL:%SERVER_PRECEDENCE:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"',
            "auth-timeout = 60",
            "cookie-timeout = 60",
            "use-occtl = true",
            f"device = vwoc{self.namespace.slot}-",
            "predictable-ips = true",
            f"ipv4-network = {self.pool}",
            *(f"select-group = {group}" for group in GROUPS),
        ]
        return "".join(f"{line}\n" for line in lines)

    def _await_ready(self) -> None:
        deadline = time.monotonic() + _STARTUP
        while _READY not in self.log.read_text(errors="replace"):
            if self._process is not None and self._process.poll() is not None:
                raise LabError(f"ocserv exited: {self.log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise LabError(f"ocserv did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def close(self) -> None:
        if self._process is not None:
            self.namespace.stop(self._process)
            self._process = None
        run(["ip", "route", "del", "unreachable", self.pool], check=False)
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None

    def sessions(self, user_agent: str) -> list[dict[str, object]]:
        """The sessions ocserv holds (open, or a cookie still valid) for clients whose agent
        string contains ``user_agent``: ``occtl show sessions all``."""
        assert self._sockets is not None
        listing = self.namespace.exec(
            ["occtl", "--json", "-s", str(self._sockets / "occtl.sock"), "show", "sessions", "all"]
        )
        # occtl 1.1 ends each object with a stray comma, which JSON does not allow.
        sessions: list[dict[str, object]] = json.loads(re.sub(r",(\s*[}\]])", r"\1", listing))
        return [item for item in sessions if user_agent in str(item.get("User-Agent", ""))]


# -- the real client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientOutcome:
    """What ``openconnect --authenticate`` reached: ``ok`` once it printed the session cookie."""

    ok: bool
    log: str


async def run_real_client(
    url: str,
    *,
    timeout: float,
    cafile: Path | None = None,
    servercert: str | None = None,
    user: str | None = None,
    group: str | None = None,
    password: str | None = None,
    certificate: Path | None = None,
    key: Path | None = None,
) -> ClientOutcome:
    """Log in with Debian's ``openconnect`` without a terminal (``--non-inter``): it fails where
    it would have to ask a person, as the probe does."""
    argv = ["openconnect", "--authenticate", "--protocol=anyconnect", "--non-inter"]
    for option, value in (
        ("--cafile", cafile),
        ("--servercert", servercert),
        ("--user", user),
        ("--authgroup", group),
        ("--certificate", certificate),
        ("--sslkey", key),
    ):
        if value is not None:
            argv.append(f"{option}={value}")
    if password is not None:
        argv.append("--passwd-on-stdin")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate(b"" if password is None else f"{password}\n".encode())
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        out = b""
        await proc.wait()
    text = out.decode(errors="replace")
    return ClientOutcome(proc.returncode == 0 and "COOKIE=" in text, text)
