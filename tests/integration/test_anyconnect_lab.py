"""The AnyConnect probe against the real ocserv, and the real openconnect beside it.

One ocserv in a namespace this module creates serves every case: password logins (a group list,
then username and password in two rounds), certificate logins, a pinned server key. Every case
runs the probe and ``openconnect --authenticate`` with the same credentials against the same
server, concurrently, and both must reach the same verdict; the censor cases stage what a
firewall does to the gateway's port, one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vpnwatch.importers import ImportOptions, load_file
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.ocserv import CLIENT_NAME, GROUPS, USERNAME, OcservServer, run_real_client
from vpnwatch.lab.pki import CertificateAuthority, Issued
from vpnwatch.probes.anyconnect import ANYCONNECT
from vpnwatch.result import Failure, Result
from vpnwatch.targets.anyconnect import AnyConnectTarget

pytestmark = pytest.mark.lab

#: Every case of the table gets an answer (none is a silent drop), so each has the full time: a
#: loaded machine must not turn ocserv's slow refusal of a stranger's certificate into a timeout.
OK_TIMEOUT = 10.0
#: For the censor's silent cases, which can only time out.
FAIL_TIMEOUT = 2.0
CLOSED_PORT = 4999
probe_anyconnect = ANYCONNECT.probe()


@dataclass
class Lab:
    gateway: OcservServer
    censor: Censor
    files: Path
    #: The lab's gateway as a user holds it: its AnyConnect profile and a credentials file.
    profile: AnyConnectTarget
    #: A client certificate the gateway's CA never signed.
    stranger: Issued

    def file(self, name: str) -> Path:
        return self.files / name


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    files = tmp_path_factory.mktemp("anyconnect-files")
    with Namespace() as namespace:
        workdir = tmp_path_factory.mktemp("ocserv")
        with OcservServer(namespace, workdir) as gateway:
            (files / "ca.pem").write_text(gateway.ca)
            other = CertificateAuthority.create("other CA")
            (files / "other-ca.pem").write_text(other.cert)
            stranger = other.issue("stranger", server=False)
            stranger.write(files, "stranger")
            (files / "client.crt").write_text(gateway.client_cert)
            (files / "client.key").write_text(gateway.client_key)
            (files / "credentials.txt").write_text(f"{USERNAME}\n{gateway.password}\n")
            (files / "wrong.txt").write_text(f"{USERNAME}\nnot-{gateway.password}\n")
            (files / "lab.xml").write_text(
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<AnyConnectProfile xmlns="http://schemas.xmlsoap.org/encoding/">\n'
                "  <ServerList><HostEntry>\n"
                "    <HostName>Lab gateway</HostName>\n"
                f"    <HostAddress>{gateway.host}:{gateway.port}</HostAddress>\n"
                "  </HostEntry></ServerList>\n"
                "</AnyConnectProfile>\n"
            )
            [profile] = load_file(
                files / "lab.xml", ImportOptions(auth_user_pass=files / "credentials.txt")
            )
            assert isinstance(profile, AnyConnectTarget)
            censor = Censor(namespace)
            try:
                yield Lab(gateway, censor, files, profile, stranger)
            finally:
                censor.clear()


@dataclass(frozen=True)
class Case:
    """One lab case: the target's fields beyond the profile's, and the expected verdict."""

    changes: dict[str, object]
    failure: Failure | None
    stage: str
    #: openconnect's options for the same login (file names are under the lab's files).
    client: dict[str, str]


def _cases(lab: Lab) -> dict[str, Case]:
    gateway, file = lab.gateway, lab.file
    ca = {"ca": gateway.ca}
    password = {"username": USERNAME, "password": gateway.password}
    certificate = {"cert": gateway.client_cert, "key": gateway.client_key}
    openconnect_password = {"user": USERNAME, "password": gateway.password}
    openconnect_certificate = {
        "certificate": str(file("client.crt")),
        "key": str(file("client.key")),
    }
    group = GROUPS[0]
    return {
        "password": Case(
            {**ca, "group": group}, None, "tunnel",
            {"cafile": str(file("ca.pem")), "group": group, **openconnect_password},
        ),
        "certificate": Case(
            {**ca, **certificate, "username": None, "password": None}, None, "tunnel",
            {"cafile": str(file("ca.pem")), **openconnect_certificate},
        ),
        "pinned-server-key": Case(
            {"servercert": gateway.pin, **certificate, "username": None, "password": None},
            None, "tunnel",
            {"servercert": gateway.pin, **openconnect_certificate},
        ),
        # ocserv's worker fails its side of the TLS 1.3 handshake (ours completed) and exits
        # with our request unread: the kernel resets the connection. No alert says why.
        "untrusted-client-certificate": Case(
            {**ca, "cert": lab.stranger.cert, "key": lab.stranger.key, "username": None,
             "password": None}, Failure.RESET, "auth",
            {"cafile": str(file("ca.pem")), "certificate": str(file("stranger.crt")),
             "key": str(file("stranger.key"))},
        ),
        "wrong-password": Case(
            {**ca, "group": group, "password": f"not-{gateway.password}"}, Failure.AUTH, "auth",
            {"cafile": str(file("ca.pem")), "group": group, "user": USERNAME,
             "password": f"not-{gateway.password}"},
        ),
        "no-group-chosen": Case(
            {**ca, **password}, Failure.AUTH, "auth",
            {"cafile": str(file("ca.pem")), **openconnect_password},
        ),
        "unknown-ca": Case(
            {"ca": (file("other-ca.pem")).read_text(), "group": group}, Failure.TLS_CERT, "tls",
            {"cafile": str(file("other-ca.pem")), "group": group, **openconnect_password},
        ),
        "wrong-pin": Case(
            {"servercert": "pin-sha256:" + "A" * 43 + "=", "group": group},
            Failure.TLS_CERT, "tls",
            {"servercert": "pin-sha256:" + "A" * 43 + "=", "group": group, **openconnect_password},
        ),
        "closed-port": Case(
            {**ca, "group": group, "port": CLOSED_PORT}, Failure.REFUSED, "connect",
            {"cafile": str(file("ca.pem")), "group": group, **openconnect_password},
        ),
    }  # fmt: skip


def _changed(target: AnyConnectTarget, changes: dict[str, object]) -> AnyConnectTarget:
    """The target with ``changes``, validated as a user's override is."""
    return AnyConnectTarget.model_validate({**dict(target), **changes})


async def _both(lab: Lab, case: Case) -> tuple[Result, bool, str]:
    target = _changed(lab.profile, case.changes)
    url = f"https://{target.host}:{target.port}/"
    options = dict(case.client)
    password = options.pop("password", None)
    paths = {
        name: Path(options.pop(name))
        for name in ("cafile", "certificate", "key")
        if name in options
    }
    result, client = await asyncio.gather(
        probe_anyconnect(target, OK_TIMEOUT),
        run_real_client(url, timeout=OK_TIMEOUT, password=password, **paths, **options),
    )
    return result, client.ok, client.log


async def test_every_case_gives_its_class_and_stage_and_openconnects_verdict(lab: Lab) -> None:
    cases = _cases(lab)
    outcomes = await asyncio.gather(*(_both(lab, case) for case in cases.values()))
    for (name, case), (result, client_ok, client_log) in zip(cases.items(), outcomes, strict=True):
        assert (result.failure, result.stage) == (case.failure, case.stage), (name, result)
        assert result.ok == client_ok, (name, result, client_log[-1500:])


async def test_the_profile_gateway_logs_in_with_the_imported_credentials(lab: Lab) -> None:
    result = await probe_anyconnect(
        _changed(lab.profile, {"ca": lab.gateway.ca, "group": GROUPS[0]}), OK_TIMEOUT
    )
    assert result.ok, result
    assert [stage for stage, _ in result.stages] == ["resolve", "connect", "tls", "auth", "tunnel"]
    assert "DPD answered" in result.detail
    assert result.certificate_not_after is not None
    assert lab.gateway.password not in repr(result)


async def test_a_probe_leaves_no_session_behind_while_openconnect_authenticate_does(
    lab: Lab,
) -> None:
    target = _changed(
        lab.profile,
        {"ca": lab.gateway.ca, "cert": lab.gateway.client_cert, "key": lab.gateway.client_key,
         "username": None, "password": None},
    )  # fmt: skip
    result = await probe_anyconnect(target, OK_TIMEOUT)
    assert result.ok, result
    # ocserv ends a session at a user's DISCONNECT; until then it would keep the cookie valid.
    # (Failed password logins of other tests wait for ocserv's auth-timeout, as openconnect's do.)
    assert _certificate_sessions(lab, "vpnwatch/") == []
    client = await run_real_client(
        lab.gateway.url, timeout=OK_TIMEOUT, cafile=lab.file("ca.pem"),
        certificate=lab.file("client.crt"), key=lab.file("client.key"),
    )  # fmt: skip
    assert client.ok, client.log
    # The pin the probe computes is the one openconnect prints and takes (--servercert).
    assert f"FINGERPRINT='{lab.gateway.pin}'" in client.log
    # openconnect --authenticate hands the cookie on and leaves the session to its timeout.
    states = [session["State"] for session in _certificate_sessions(lab, "VPN Agent")]
    assert "authenticated" in states


def _certificate_sessions(lab: Lab, agent: str) -> list[dict[str, object]]:
    return [
        session
        for session in lab.gateway.sessions(agent)
        if session["Username"] == CLIENT_NAME
        and (agent == "vpnwatch/") == ("vpnwatch/" in str(session["User-Agent"]))
    ]


@pytest.mark.parametrize(
    ("mode", "protocol", "failure", "stage"),
    [
        ("drop", "tcp", Failure.TIMEOUT, "connect"),
        ("reset", "tcp", Failure.REFUSED, "connect"),
        ("reset-data", "tcp", Failure.RESET, "tls"),
        ("dpi", "tls", Failure.TIMEOUT, "tls"),
    ],
)
async def test_the_censor_on_the_gateways_port(
    lab: Lab, mode: str, protocol: str, failure: Failure, stage: str
) -> None:
    target = _changed(lab.profile, {"ca": lab.gateway.ca, "group": GROUPS[0]})
    with lab.censor.applied(mode, protocol, lab.gateway.port):
        result, client = await asyncio.gather(
            probe_anyconnect(target, FAIL_TIMEOUT),
            run_real_client(
                lab.gateway.url, timeout=FAIL_TIMEOUT * 2, cafile=lab.file("ca.pem"),
                group=GROUPS[0], user=USERNAME, password=lab.gateway.password,
            ),
        )  # fmt: skip
    assert (result.failure, result.stage) == (failure, stage), result
    assert not client.ok, client.log


def test_no_password_or_key_reaches_what_the_commands_print(lab: Lab) -> None:
    """``config check`` and ``check`` (debug logs, text and JSON) on good and failing logins."""
    lab.file("wrong.pass").write_text(f"not-{lab.gateway.password}\n")
    lab.file("good.pass").write_text(f"{lab.gateway.password}\n")
    common = f"protocol: anyconnect, url: '{lab.gateway.url}', ca_file: ca.pem, group: {GROUPS[0]}"
    config = lab.file("vpnwatch.yml")
    config.write_text(
        "targets:\n"
        f"  - {{name: good, {common}, username: {USERNAME}, password_file: good.pass}}\n"
        f"  - {{name: wrong, {common}, username: {USERNAME}, password_file: wrong.pass}}\n"
        f"  - {{name: cert, {common}, cert_file: client.crt, key_file: client.key}}\n"
    )
    runs = [
        ["config", "check", str(config)],
        ["--log-level", "debug", "check", "--config", str(config)],
        ["--log-level", "debug", "check", "--json", "--config", str(config)],
    ]
    output = ""
    for argv in runs:
        proc = subprocess.run(
            [sys.executable, "-m", "vpnwatch.cli", *argv],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        output += proc.stdout + proc.stderr
    assert "good" in output and "the server asked for the password again" in output
    key_body = "".join(lab.gateway.client_key.strip().splitlines()[1:-1])
    for secret in (lab.gateway.password, f"not-{lab.gateway.password}", key_body[:40]):
        raw = secret.encode()
        for form in (secret, base64.b64encode(raw).decode(), raw.hex()):
            assert form not in output


async def test_the_lab_command_blocks_the_gateways_tls_by_name(lab: Lab) -> None:
    """``vpnwatch lab censor dpi anyconnect`` finds ocserv's port and drops its ClientHellos."""
    target = _changed(lab.profile, {"ca": lab.gateway.ca, "group": GROUPS[0]})
    command = [sys.executable, "-m", "vpnwatch.lab.cli", "censor"]
    name = ["--lab", lab.censor.namespace.name]
    applied = subprocess.run(
        [*command, "dpi", "anyconnect", *name], capture_output=True, text=True, check=False
    )
    try:
        assert applied.returncode == 0, applied.stderr
        assert f"dpi tls on tcp/{lab.gateway.port}" in applied.stdout + applied.stderr
        blocked = await probe_anyconnect(target, FAIL_TIMEOUT)
    finally:
        subprocess.run([*command, "clear", *name], check=True, capture_output=True)
    assert (blocked.failure, blocked.stage) == (Failure.TIMEOUT, "tls")
    assert (await probe_anyconnect(target, OK_TIMEOUT)).ok
