"""The report reaches a protected Prometheus, and no credential appears in anything it prints.

A real Prometheus serves the scripted day behind its own ``--web.config.file``: TLS with a
certificate from a throwaway CA, a client certificate required, and basic auth. Prometheus does
not check bearer tokens itself, so the token case goes through a small gateway on loopback
that admits only the right token and tenant header and forwards to that Prometheus, as an
authenticating proxy in front of Mimir or Cortex would.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.hardening.hostile_http import AnsweringHandler, threaded
from tests.report import scenario
from tests.report.test_scenario import DAY_ARGS
from tests.stack.promlib import backfill_file, serving_tsdb
from vpnwatch import cli
from vpnwatch.errors import ConfigError
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.report.access import ENV_PASSWORD, ENV_TOKEN, AccessOptions, prometheus_access
from vpnwatch.report.cli import EXIT_OK, EXIT_PROMETHEUS, EXIT_USAGE, main

USER = "reporter"
#: A colon, a space and non-ASCII: everything basic auth must carry intact.
PASSWORD = "s3cret:pa ss-é"
TOKEN = "tok-7f3a9c1e5b2d4068"
TENANT = "karachi-press"
#: A successful run prints only its summary line (``run`` checks there is at most one).
WROTE = "vpnwatch report: wrote "


@dataclass(frozen=True)
class Guarded:
    """The protected Prometheus and the files a reporter is given to reach it."""

    url: str
    ca: Path
    cert: Path
    key: Path
    password_file: Path
    other_ca: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        context.load_cert_chain(self.cert, self.key)
        return context

    def options(self) -> list[str]:
        return [
            "--prometheus", self.url, "--prometheus-ca", str(self.ca),
            "--prometheus-cert", str(self.cert), "--prometheus-key", str(self.key),
        ]  # fmt: skip


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    work = tmp_path_factory.mktemp("guarded")
    scenario.write(work / "scenario.om")
    backfill_file(work / "scenario.om", work / "tsdb")
    ca = CertificateAuthority.create("report test CA")
    ca_file = work / "ca.crt"
    ca_file.write_text(ca.cert)
    other_ca = work / "other-ca.crt"
    other_ca.write_text(CertificateAuthority.create("someone else").cert)
    server_cert, server_key = ca.issue("prometheus", server=True, sans=("127.0.0.1",)).write(
        work, "server"
    )
    client_cert, client_key = ca.issue(USER, server=False).write(work, "client")
    password_file = work / "password"
    password_file.write_text(PASSWORD + "\n")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config = work / "web.yml"
    web_config.write_text(
        json.dumps(
            {
                "tls_server_config": {
                    "cert_file": str(server_cert),
                    "key_file": str(server_key),
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": str(ca_file),
                },
                "basic_auth_users": {USER: hashed},
            }
        )
    )
    files = Guarded("", ca_file, client_cert, client_key, password_file, other_ca)

    def ready(url: str) -> bool:
        request = urllib.request.Request(
            f"{url}/-/ready", headers={"Authorization": _basic(USER, PASSWORD)}
        )
        try:
            with urllib.request.urlopen(request, timeout=2, context=files.context()) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    with serving_tsdb(work / "tsdb", work, web_config=web_config, ready=ready) as url:
        yield Guarded(url, ca_file, client_cert, client_key, password_file, other_ca)


@dataclass
class Outcome:
    status: int
    out: str
    err: str
    document: dict[str, object] = field(default_factory=dict)


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """Run the report; whatever it printed or wrote must hold no credential."""
    output = tmp_path / "report.json"
    output.unlink(missing_ok=True)
    status = main([*args, *DAY_ARGS, "-o", str(output)])
    out, err = capsys.readouterr()
    written = output.read_text() if output.exists() else ""
    for secret in (PASSWORD, urllib.parse.quote(PASSWORD, safe=""), TOKEN, "s3cret"):
        assert secret not in out + err + written
    assert err.count("\n") <= 1
    return Outcome(status, out, err, json.loads(written) if written else {})


def test_report_through_tls_client_certificate_and_basic_auth(
    guarded: Guarded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(
        tmp_path, capsys, *guarded.options(),
        "--prometheus-user", USER, "--prometheus-password-file", str(guarded.password_file),
    )  # fmt: skip
    assert done.status == EXIT_OK and done.err.startswith(WROTE)
    provenance = done.document["report"]
    assert isinstance(provenance, dict)
    assert provenance["prometheus"] == guarded.url
    incidents = done.document["incidents"]
    assert isinstance(incidents, list)
    assert len(incidents) == len(scenario.expected_incidents())


def test_the_status_page_reaches_the_same_protected_prometheus(
    guarded: Guarded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "status.html"
    auth = ["--prometheus-user", USER, "--prometheus-password-file", str(guarded.password_file)]
    argv = ["status", *guarded.options(), *auth, "--at", "2024-03-11T00:00:00Z", "--days", "2"]
    assert cli.main([*argv, "-o", str(page)]) == EXIT_OK
    out, err = capsys.readouterr()
    html = page.read_text()
    assert err.startswith("vpnwatch status: wrote ") and err.count("\n") == 1
    assert scenario.KARACHI in html and scenario.LAHORE in html
    for secret in (PASSWORD, TOKEN, "s3cret"):
        assert secret not in out + err + html


def test_credentials_in_the_url_or_the_environment_work_and_are_never_shown(
    guarded: Guarded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quoted = urllib.parse.quote(PASSWORD, safe="")
    in_url = guarded.url.replace("https://", f"https://{USER}:{quoted}@")
    options = guarded.options()
    done = run(tmp_path, capsys, *options, "--prometheus", in_url)
    assert done.status == EXIT_OK and done.err.startswith(WROTE)
    assert done.document["report"]["prometheus"] == guarded.url  # type: ignore[index]

    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    done = run(tmp_path, capsys, *options, "--prometheus-user", USER)
    assert done.status == EXIT_OK and done.err.startswith(WROTE)


def test_a_wrong_password_is_one_line_without_it(
    guarded: Guarded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = urllib.parse.quote("s3cret-wrong", safe="")
    url = guarded.url.replace("https://", f"https://{USER}:{wrong}@")
    done = run(tmp_path, capsys, *guarded.options(), "--prometheus", url)
    assert done.status == EXIT_PROMETHEUS
    assert done.err.startswith(f"vpnwatch report: {guarded.url}: /api/v1/series failed: ")
    assert "(HTTP 401: check the credentials" in done.err


def test_tls_failures_are_one_line(
    guarded: Guarded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = ["--prometheus-user", USER, "--prometheus-password-file", str(guarded.password_file)]
    untrusted = run(tmp_path, capsys, "--prometheus", guarded.url, *auth)
    assert untrusted.status == EXIT_PROMETHEUS
    assert "its certificate did not verify" in untrusted.err
    other = run(tmp_path, capsys, "--prometheus", guarded.url, "--prometheus-ca",
                str(guarded.other_ca), *auth)  # fmt: skip
    assert "its certificate did not verify" in other.err
    no_client_cert = run(
        tmp_path, capsys, "--prometheus", guarded.url, "--prometheus-ca", str(guarded.ca), *auth
    )
    assert no_client_cert.status == EXIT_PROMETHEUS
    assert no_client_cert.err.startswith(
        f"vpnwatch report: cannot reach Prometheus at {guarded.url}"
    )


# -- a token and a tenant header, through an authenticating gateway ------------------------------


class _Gateway(http.server.ThreadingHTTPServer):
    """Admits requests with the right token and tenant; forwards them to the guarded server."""

    upstream: Guarded
    seen: list[dict[str, str]]


class _GatewayHandler(AnsweringHandler):
    server: _Gateway

    def do_POST(self) -> None:
        self.server.seen.append(dict(self.headers))
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.answer(401, b'{"status":"error","error":"bad token"}')
            return
        if self.headers.get("X-Scope-OrgID") != TENANT:
            self.answer(403, b'{"status":"error","error":"no such tenant"}')
            return
        upstream = self.server.upstream
        request = urllib.request.Request(
            upstream.url + self.path,
            data=body,
            headers={
                "Authorization": _basic(USER, PASSWORD),
                "Content-Type": self.headers.get("Content-Type", ""),
            },
        )
        with urllib.request.urlopen(request, timeout=60, context=upstream.context()) as answer:
            self.answer(answer.status, answer.read())


@pytest.fixture
def gateway(guarded: Guarded) -> Iterator[_Gateway]:
    server = _Gateway(("127.0.0.1", 0), _GatewayHandler)
    server.upstream = guarded
    server.seen = []
    with threaded(server):
        yield server


def test_a_bearer_token_and_a_tenant_header_are_sent(
    gateway: _Gateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    tenant = ["--prometheus-header", f"X-Scope-OrgID: {TENANT}"]
    done = run(tmp_path, capsys, "--prometheus", url, "--prometheus-token-file", str(token_file),
               *tenant)  # fmt: skip
    assert done.status == EXIT_OK and done.err.startswith(WROTE)
    assert gateway.seen and all(h["Authorization"] == f"Bearer {TOKEN}" for h in gateway.seen)

    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    assert run(tmp_path, capsys, "--prometheus", url, *tenant).status == EXIT_OK
    missing_tenant = run(tmp_path, capsys, "--prometheus", url)
    assert missing_tenant.status == EXIT_PROMETHEUS
    assert "no such tenant (HTTP 403: check the credentials" in missing_tenant.err
    monkeypatch.setenv(ENV_TOKEN, "tok-wrong")
    assert "bad token (HTTP 401" in run(tmp_path, capsys, "--prometheus", url, *tenant).err


# -- the options themselves -----------------------------------------------------------------------


def test_the_url_shown_has_no_credential_and_requests_carry_them() -> None:
    access = prometheus_access("https://ann:pw%3Ax@prom.example:9443/prefix/", environ={})
    assert access.url == "https://prom.example:9443/prefix"
    assert access.headers == (("Authorization", _basic("ann", "pw:x")),)
    assert "pw" not in repr(access)


@pytest.mark.parametrize(
    ("url", "options", "environ", "problem"),
    [
        ("http://h", AccessOptions(user="ann"), {}, "no password for the user"),
        ("http://ann:x@h", AccessOptions(user="bob"), {}, "the URL names a user already"),
        ("http://:x@h", AccessOptions(), {}, "a password needs a user"),
        ("http://ann:x@h", AccessOptions(), {ENV_TOKEN: "t"}, "not both"),
        ("http://h?token=x", AccessOptions(), {}, r"without \? or #"),
        ("http://h:99999", AccessOptions(), {}, "is not a URL"),
        ("http://h", AccessOptions(ca_file=Path("/x")), {}, "--prometheus-ca: needs an https://"),
        ("http://h", AccessOptions(headers=["X-Scope-OrgID"]), {}, "give 'Name: value'"),
        ("http://h", AccessOptions(headers=["Authorization: x"]), {}, "set by the report itself"),
        ("http://h", AccessOptions(headers=["X-A: a\x1bb"]), {}, "X-A holds control characters"),
        ("https://h", AccessOptions(cert_file=Path("/x")), {}, "--prometheus-key together"),
        ("https://h", AccessOptions(ca_file=Path("/dev/zero")), {}, "not a regular file"),
    ],
)
def test_bad_access_options_are_one_line_without_the_secret(
    url: str, options: AccessOptions, environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        prometheus_access(url, options, environ)
    assert "x@" not in str(info.value) and "X-A: a" not in str(info.value)


def test_a_password_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    options = AccessOptions(user="ann", password_file=fifo)
    with pytest.raises(ConfigError, match=r"--prometheus-password-file: cannot read .*regular"):
        prometheus_access("http://h", options, {})


def test_an_encrypted_client_key_is_refused_without_a_prompt(tmp_path: Path) -> None:
    ca = CertificateAuthority.create()
    cert, _ = ca.issue("c", server=False).write(tmp_path, "client")
    key = tmp_path / "encrypted.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    options = AccessOptions(cert_file=cert, key_file=key)
    with pytest.raises(ConfigError, match="not a matching PEM certificate and unencrypted key"):
        prometheus_access("https://h", options, {})


def test_bad_options_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--prometheus", "http://127.0.0.1:9", "--prometheus-user", "ann"])
    assert status == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"vpnwatch report: --prometheus-user: no password for the user: give"
        f" --prometheus-password-file or set ${ENV_PASSWORD}\n"
    )
