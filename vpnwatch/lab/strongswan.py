"""strongSwan's charon for the lab: an IKEv2 gateway in a lab namespace, and the real client.

This kernel has no XFRM, so both run charon's ``kernel-libipsec`` plugin: ESP in userspace over a
TUN device, always UDP-encapsulated (``encap = yes`` on the client, as vpnwatch's probe does).
Each charon gets its own strongswan.conf (``STRONGSWAN_CONF``), VICI socket and, through a private
mount of ``/run``, its own pid file, so that several run at once: the gateway in the namespace,
and :class:`CharonClient` — the real client ``swanctl --initiate`` drives — in a namespace of its
own (:class:`ClientNamespace`), linked straight to the gateway's, where it may install the routes
kernel-libipsec insists on without touching this host's. It reaches the gateway at the same
address the probe uses, so both read the same swanctl.conf.

The gateway serves three setups, chosen by the client's identity: a pre-shared key, certificates
on both sides, and EAP-MSCHAPv2 with a gateway certificate. Clients get inner addresses from
198.19.<slot>.128/26, and the address behind the gateway that answers ping is 198.19.<slot>.200;
this host gets an ``unreachable`` route for 198.19.<slot>.128/25 while the lab stands, so that
nothing addressed there can leave by the default route.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vpnwatch.lab.netns import LabError, Namespace, remove_namespace, run, stop_process
from vpnwatch.lab.pki import CertificateAuthority, Issued
from vpnwatch.lab.process import LabService

CHARON = "/usr/lib/ipsec/charon"
_STARTUP_SECONDS = 15.0
_POLL_SECONDS = 0.05
_PLUGINS = (
    "random nonce aes sha1 sha2 md5 hmac gcm openssl pem pkcs1 pkcs8 x509 revocation constraints"
    " pubkey gmp kdf kernel-libipsec kernel-netlink socket-default vici eap-identity eap-mschapv2"
)
#: The gateway's IKE and ESP proposals: what strongSwan and the platforms' clients offer, minus
#: ecp384 (a client offering only that gets NO_PROPOSAL_CHOSEN; one starting with it,
#: INVALID_KE_PAYLOAD).
IKE_PROPOSALS = (
    "aes256gcm16-aes128gcm16-prfsha256-prfsha384-ecp256-x25519-modp2048,"
    "aes256-aes128-sha256-sha384-prfsha256-ecp256-x25519-modp2048"
)
ESP_PROPOSALS = "aes256gcm16-aes128gcm16,aes256-aes128-sha256"
GATEWAY_ID = "gw.lab.invalid"
PSK_ID = "psk-probe@lab.invalid"
CERT_ID = "cert-probe.lab.invalid"
EAP_USER = "eap-probe"
#: A port nothing listens on (ICMP port unreachable), and one where the gateway's namespace drops
#: every datagram (silence), so that the probe and the real client meet the same two failures.
CLOSED_PORT = 5500
SILENT_PORT = 5501
_BLACKHOLE_TABLE = "vpnwatch_ike_blackhole"


def inner_prefix(namespace: Namespace) -> str:
    return f"198.19.{namespace.slot}"


def _settings(name: str, body: Mapping[str, object], indent: str = "") -> str:
    """strongSwan's settings syntax for a nested mapping."""
    lines = [f"{indent}{name} {{"]
    for key, value in body.items():
        if isinstance(value, Mapping):
            lines.append(_settings(key, value, indent + "  "))
        else:
            lines.append(f"{indent}  {key} = {value}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def _strongswan_conf(directory: Path, *, client: bool, cookie_threshold: int = 100) -> Path:
    """strongswan.conf for one charon: its plugins, log, VICI socket and, for the client, quick
    retransmissions and random ports."""
    charon: dict[str, object] = {
        "load": _PLUGINS,
        "filelog": {
            "log": {"path": directory / "charon.log", "default": 1, "ike": 2, "flush_line": "yes"}
        },
        "plugins": {"vici": {"socket": f"unix://{directory / 'charon.vici'}"}},
    }
    if not client:
        # charon ignores a sixth half-open IKE SA from one address (block_threshold 5): the lab's
        # probes, all from this host, start many at once.
        charon |= {"block_threshold": 100, "cookie_threshold": cookie_threshold}
    if client:
        charon |= {
            "port": 0,
            "port_nat_t": 0,
            "retransmit_timeout": 0.5,
            "retransmit_base": 1.4,
            "retransmit_tries": 2,
        }
    swanctl = {
        "load": "pem pkcs1 pkcs8 x509 openssl",
        "socket": f"unix://{directory / 'charon.vici'}",
    }
    path = directory / "strongswan.conf"
    path.write_text(_settings("charon", charon) + "\n" + _settings("swanctl", swanctl) + "\n")
    return path


class _Charon:
    """One charon process with its own configuration directory."""

    def __init__(self, directory: Path, conf: Path, argv_prefix: list[str]) -> None:
        self.directory = directory
        self.conf = conf
        self._prefix = argv_prefix
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "STRONGSWAN_CONF": str(self.conf)}

    def start(self, spawn: object = None) -> None:
        # A private /run: charon's pid file is fixed at /var/run/charon.pid.
        argv = [
            *self._prefix,
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount -t tmpfs vpnwatch-charon /run && exec {CHARON}",
        ]
        log = (self.directory / "charon.out").open("wb")
        self.process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        socket = self.directory / "charon.vici"
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"charon did not start: {self.log_tail()}")
            time.sleep(_POLL_SECONDS)

    def swanctl(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self._prefix, "swanctl", *argv],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise LabError(f"swanctl {' '.join(argv)}: {proc.stdout.strip()} {proc.stderr.strip()}")
        return proc

    def load(self, swanctl_conf: Path) -> None:
        self.swanctl("--load-all", "--noprompt", "--file", str(swanctl_conf))

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def log_tail(self, lines: int = 20) -> str:
        texts = []
        for name in ("charon.out", "charon.log"):
            with contextlib.suppress(OSError):
                texts.append("\n".join((self.directory / name).read_text().splitlines()[-lines:]))
        return "\n".join(texts)


@dataclass
class ClientFiles:
    """A client's swanctl.conf, written as a user holds it: certificates beside it."""

    path: Path
    connection: str


@dataclass
class CharonGateway(LabService["CharonGateway"]):
    """charon answering IKEv2 on UDP 500/4500 in ``namespace`` for the PSK, certificate and EAP
    setups. Use as a context manager."""

    namespace: Namespace
    ca: CertificateAuthority = field(
        default_factory=lambda: CertificateAuthority.create("vpnwatch lab IKE CA")
    )
    psk: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    eap_password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    #: Half-open IKE SAs at which charon starts demanding a COOKIE.
    cookie_threshold: int = 100
    _directory: Path | None = field(default=None, init=False, repr=False)
    _charon: _Charon | None = field(default=None, init=False, repr=False)
    _gateway_cert: Issued | None = field(default=None, init=False, repr=False)
    _client_cert: Issued | None = field(default=None, init=False, repr=False)

    @property
    def host(self) -> str:
        return self.namespace.ip

    @property
    def echo_address(self) -> str:
        return f"{inner_prefix(self.namespace)}.200"

    @property
    def guarded_prefix(self) -> str:
        return f"{inner_prefix(self.namespace)}.128/25"

    @property
    def client_cert(self) -> Issued:
        assert self._client_cert is not None
        return self._client_cert

    def log_tail(self) -> str:
        return self._charon.log_tail() if self._charon else ""

    def start(self) -> CharonGateway:
        directory = self._directory = Path(tempfile.mkdtemp(prefix="vpnwatch-charon-gw-"))
        prefix = inner_prefix(self.namespace)
        run(["ip", "route", "replace", "unreachable", self.guarded_prefix])
        self.namespace.exec(["ip", "addr", "add", f"{self.echo_address}/32", "dev", "lo"])
        self.namespace.exec(["nft", "-f", "-"], input_=(
            f"table inet {_BLACKHOLE_TABLE} {{\n chain input {{\n"
            f"  type filter hook input priority filter; udp dport {SILENT_PORT} drop\n }}\n}}\n"
        ))  # fmt: skip
        self._gateway_cert = self.ca.issue(GATEWAY_ID, server=True, sans=(GATEWAY_ID,))
        self._client_cert = self.ca.issue(CERT_ID, server=False, sans=(CERT_ID,))
        swanctl = directory / "swanctl"
        for sub in ("x509", "x509ca", "private"):
            (swanctl / sub).mkdir(parents=True)
        (swanctl / "x509ca" / "ca.pem").write_text(self.ca.cert)
        self._gateway_cert.write(swanctl, "gw")
        shutil.move(swanctl / "gw.crt", swanctl / "x509" / "gw.pem")
        shutil.move(swanctl / "gw.key", swanctl / "private" / "gw.pem")
        child = {"net": {"local_ts": f"{self.echo_address}/32", "esp_proposals": ESP_PROPOSALS}}
        common = {"proposals": IKE_PROPOSALS, "pools": "probes", "children": child}
        by_cert = {"auth": "pubkey", "certs": "gw.pem", "id": GATEWAY_ID}
        connections = {
            "psk": common
            | {"local": {"auth": "psk", "id": GATEWAY_ID}, "remote": {"auth": "psk", "id": PSK_ID}},
            "cert": common
            | {"local": by_cert, "remote": {"auth": "pubkey", "id": CERT_ID, "cacerts": "ca.pem"}},
            "eap": common
            | {"local": by_cert, "remote": {"auth": "eap-mschapv2", "eap_id": "%any"}},
        }
        body = _settings("connections", connections) + "\n"
        body += _settings("pools", {"probes": {"addrs": f"{prefix}.128/26"}}) + "\n"
        body += _settings("secrets", {
            "ike-psk": {"id-gw": GATEWAY_ID, "id-probe": PSK_ID, "secret": f'"{self.psk}"'},
            "eap-probe": {"id": EAP_USER, "secret": f'"{self.eap_password}"'},
        }) + "\n"  # fmt: skip
        conf_file = swanctl / "swanctl.conf"
        conf_file.write_text(body)
        conf_file.chmod(0o600)
        conf = _strongswan_conf(directory, client=False, cookie_threshold=self.cookie_threshold)
        self._charon = _Charon(directory, conf, self.namespace.argv([]))
        self._charon.start()
        self._charon.load(conf_file)
        return self

    def close(self) -> None:
        if self._charon is not None:
            self._charon.stop()
            self._charon = None
        run(["ip", "route", "del", "unreachable", self.guarded_prefix], check=False)
        self.namespace.exec(
            ["ip", "addr", "del", f"{self.echo_address}/32", "dev", "lo"], check=False
        )
        self.namespace.exec(["nft", "delete", "table", "inet", _BLACKHOLE_TABLE], check=False)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def ike_sas(self) -> list[str]:
        """The names of the IKE SAs the gateway holds now."""
        assert self._charon is not None
        listed = self._charon.swanctl("--list-sas", "--raw").stdout
        return re.findall(r"^list-sa event \{(\S+) \{", listed, re.MULTILINE)

    # --- what users hold ---

    def client_conf(
        self,
        directory: Path,
        setup: str,
        *,
        psk: str | None = None,
        password: str | None = None,
        ca: str | None = None,
        proposals: str | None = None,
        port: int = 500,
        name: str | None = None,
    ) -> ClientFiles:
        """A road-warrior client's swanctl.conf (and certificates beside it) for ``setup``
        (``psk``, ``cert`` or ``eap``); the keyword arguments make it wrong on purpose."""
        for sub in ("x509", "x509ca", "private"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / "x509ca" / "lab-ca.pem").write_text(ca or self.ca.cert)
        remote: dict[str, object] = {"auth": "pubkey", "id": GATEWAY_ID, "cacerts": "lab-ca.pem"}
        secrets_: dict[str, object] = {}
        if setup == "psk":
            local: dict[str, object] = {"auth": "psk", "id": PSK_ID}
            remote = {"auth": "psk", "id": GATEWAY_ID}
            secrets_["ike-lab"] = {
                "id-gw": GATEWAY_ID,
                "id-probe": PSK_ID,
                "secret": f'"{psk or self.psk}"',
            }
        elif setup == "cert":
            (directory / "x509" / "probe.pem").write_text(self.client_cert.cert)
            key = directory / "private" / "probe.pem"
            key.write_text(self.client_cert.key)
            key.chmod(0o600)
            local = {"auth": "pubkey", "certs": "probe.pem", "id": CERT_ID}
        elif setup == "eap":
            local = {"auth": "eap-mschapv2", "eap_id": EAP_USER, "id": EAP_USER}
            secrets_["eap-lab"] = {"id": EAP_USER, "secret": f'"{password or self.eap_password}"'}
        else:
            raise ValueError(f"unknown setup {setup!r}")
        connection = {
            "remote_addrs": self.host,
            "remote_port": port,
            "vips": "0.0.0.0",  # noqa: S104 - swanctl's "assign me an address"
            "encap": "yes",
            "proposals": proposals or "default",
            "local": local,
            "remote": remote,
            "children": {
                "net": {"remote_ts": f"{self.echo_address}/32", "esp_proposals": ESP_PROPOSALS}
            },
        }
        name = name or f"lab-{setup}"
        body = _settings("connections", {name: connection}) + "\n"
        if secrets_:
            body += _settings("secrets", secrets_) + "\n"
        path = directory / "swanctl.conf"
        path.write_text(body)
        path.chmod(0o600)
        return ClientFiles(path, name)


@dataclass
class ClientNamespace(LabService["ClientNamespace"]):
    """A namespace for the real client, joined to the gateway's by its own veth pair.

    The link is 198.18.<slot>.4/30 (gateway side .5, client .6), and the client routes everything
    over it, so it reaches the gateway at the address the probe uses (198.18.<slot>.2).
    """

    gateway: Namespace

    @property
    def name(self) -> str:
        return f"vpnwatch-ikc{self.gateway.slot}"

    @property
    def _links(self) -> tuple[str, str]:
        return f"vwikc{self.gateway.slot}g", f"vwikc{self.gateway.slot}c"

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def start(self) -> ClientNamespace:
        gateway_end, client_end = self._links
        prefix = f"198.18.{self.gateway.slot}"
        run(["ip", "netns", "add", self.name])
        run(["ip", "link", "add", gateway_end, "type", "veth", "peer", "name", client_end])
        run(["ip", "link", "set", gateway_end, "netns", self.gateway.name])
        run(["ip", "link", "set", client_end, "netns", self.name])
        self.gateway.exec(["ip", "addr", "add", f"{prefix}.5/30", "dev", gateway_end])
        self.gateway.exec(["ip", "link", "set", gateway_end, "up"])
        run(self.argv(["ip", "link", "set", "lo", "up"]))
        run(self.argv(["ip", "addr", "add", f"{prefix}.6/30", "dev", client_end]))
        run(self.argv(["ip", "link", "set", client_end, "up"]))
        run(self.argv(["ip", "route", "add", "default", "via", f"{prefix}.5"]))
        return self

    def close(self) -> None:
        remove_namespace(self.name)
        self.gateway.exec(["ip", "link", "del", self._links[0]], check=False)


@dataclass
class CharonClient(LabService["CharonClient"]):
    """The real client: a second charon in a :class:`ClientNamespace`, on random ports."""

    namespace: ClientNamespace
    _directory: Path | None = field(default=None, init=False, repr=False)
    _charon: _Charon | None = field(default=None, init=False, repr=False)

    def start(self) -> CharonClient:
        self._directory = Path(tempfile.mkdtemp(prefix="vpnwatch-charon-client-"))
        conf = _strongswan_conf(self._directory, client=True)
        self._charon = _Charon(self._directory, conf, self.namespace.argv([]))
        self._charon.start()
        return self

    def initiate(self, files: ClientFiles, timeout: float) -> bool:
        """Load ``files`` and ``swanctl --initiate`` its child: whether it came up. Then the
        connection is terminated and unloaded, so the next case starts clean."""
        assert self._charon is not None
        self._charon.load(files.path)
        try:
            proc = self._charon.swanctl(
                "--initiate",
                "--child",
                "net",
                "--ike",
                files.connection,
                "--timeout",
                f"{timeout:g}",
                check=False,
            )
            return proc.returncode == 0
        finally:
            self._charon.swanctl(
                "--terminate", "--ike", files.connection, "--force", "--timeout", "2", check=False
            )
            self._charon.swanctl("--unload-conn", files.connection, check=False)

    def close(self) -> None:
        if self._charon is not None:
            self._charon.stop()
            self._charon = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
