"""Secured endpoints: a real Prometheus scrapes vpnwatch over TLS with a client certificate and
basic auth (a bcrypt hash in the exporter-toolkit web config), a wrong password gets 401, and
the on-demand /probe endpoint answers a Prometheus scrape job of its own."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import yaml

from tests.stack.promlib import Prometheus, free_port, running_prometheus, wait_for
from vpnwatch.lab.pki import CertificateAuthority

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Secured:
    prometheus: Prometheus
    url: str  # https://127.0.0.1:PORT
    pki: Path  # ca.crt, client.crt, client.key


def web_config(directory: Path) -> Path:
    """Server and client certificates from one throwaway CA, and a user with a $2y$ hash
    (what htpasswd -B writes), cost 4 to keep the test quick."""
    ca = CertificateAuthority.create("vpnwatch test CA")
    (directory / "ca.crt").write_text(ca.cert)
    ca.issue("vpnwatch", server=True, sans=("127.0.0.1",)).write(directory, "server")
    ca.issue("prometheus", server=False).write(directory, "client")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = {
        "tls_server_config": {
            "cert_file": "server.crt",
            "key_file": "server.key",
            "client_ca_file": "ca.crt",
            "client_auth_type": "RequireAndVerifyClientCert",
        },
        "basic_auth_users": {"prometheus": hashed.replace("$2b$", "$2y$", 1)},
        "http_server_config": {"http2": True, "headers": {"X-Frame-Options": "deny"}},
    }
    path = directory / "web.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def scrape_job(name: str, address: str, pki: Path, password: str, **extra: object) -> dict:
    return {
        "job_name": name,
        "scheme": "https",
        "tls_config": {
            "ca_file": str(pki / "ca.crt"),
            "cert_file": str(pki / "client.crt"),
            "key_file": str(pki / "client.key"),
        },
        "basic_auth": {"username": "prometheus", "password": password},
        "static_configs": [{"targets": [address]}],
        **extra,
    }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    pki = tmp_path_factory.mktemp("pki")
    web = web_config(pki)
    with socket.create_server(("127.0.0.1", 0)) as listener:  # the target: a TCP port that answers
        config = pki / "vpnwatch.yml"
        config.write_text(
            "settings: {interval: 1, timeout: 0.5}\n"
            "targets:\n"
            f"  - {{name: ctl-local, protocol: tcp, host: 127.0.0.1, "
            f"port: {listener.getsockname()[1]}}}\n"
        )
        address = f"127.0.0.1:{free_port()}"
        monitor = subprocess.Popen(
            [sys.executable, "-m", "vpnwatch.cli", "run", "--config", str(config),
             "--listen", address, "--web.config.file", str(web), "--web.enable-probe"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            jobs = [
                scrape_job("vpnwatch", address, pki, PASSWORD),
                scrape_job("wrong-password", address, pki, PASSWORD + "!"),
                scrape_job("probe", address, pki, PASSWORD, metrics_path="/probe",
                           params={"target": ["ctl-local"]}),
            ]  # fmt: skip
            prometheus_config = {"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}
            with running_prometheus(
                tmp_path_factory.mktemp("prometheus"), yaml.safe_dump(prometheus_config)
            ) as prometheus:
                yield Secured(prometheus, f"https://{address}", pki)
        finally:
            monitor.terminate()
            _, stderr = monitor.communicate(timeout=10)
            assert PASSWORD not in stderr


def test_prometheus_scrapes_over_tls_with_client_certificate_and_basic_auth(
    secured: Secured,
) -> None:
    probes = wait_for(
        lambda: secured.prometheus.query('vpnwatch_probes_total{job="vpnwatch"} > 0', time.time()),
        "an authenticated scrape over TLS",
    )
    assert probes[0]["metric"]["target"] == "ctl-local"
    up = {s["metric"]["job"]: s["value"][1] for s in secured.prometheus.query("up", time.time())}
    assert up["vpnwatch"] == "1"


def test_a_wrong_password_is_refused_with_401(secured: Secured) -> None:
    def refused() -> str:
        targets = secured.prometheus.api("/api/v1/targets")["activeTargets"]
        (wrong,) = [t for t in targets if t["labels"]["job"] == "wrong-password"]
        return wrong["lastError"] if wrong["health"] == "down" else ""

    assert "401" in wait_for(refused, "the wrong password's scrape to fail")
    assert fetch(secured, "/metrics", PASSWORD + "!") == 401
    assert fetch(secured, "/metrics", None) == 401
    assert fetch(secured, "/metrics", PASSWORD) == 200
    assert fetch(secured, "/healthz", None) == 200  # health checks need no password


def test_the_configured_headers_come_with_every_answer(secured: Secured) -> None:
    for path, password in (("/metrics", PASSWORD), ("/metrics", None), ("/healthz", None)):
        assert fetch(secured, path, password, header="X-Frame-Options") == "deny"


def test_a_client_without_certificate_cannot_connect(secured: Secured) -> None:
    context = ssl.create_default_context(cafile=secured.pki / "ca.crt")
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        urllib.request.urlopen(f"{secured.url}/healthz", context=context, timeout=10).read()


def test_prometheus_drives_an_on_demand_probe(secured: Secured) -> None:
    success = wait_for(
        lambda: secured.prometheus.query('vpnwatch_probe_success{job="probe"}', time.time()),
        "a scrape of /probe?target=ctl-local",
    )
    assert [(s["metric"]["target"], s["value"][1]) for s in success] == [("ctl-local", "1")]
    # The scheduled counters are the monitor's own: /probe does not add to them, nor reports them.
    assert not secured.prometheus.query(
        'vpnwatch_config_last_reload_successful{job="probe"}', time.time()
    )


def test_probe_of_an_unknown_target_is_a_clear_400(secured: Secured) -> None:
    assert fetch(secured, "/probe?target=nope.invalid", PASSWORD) == 400
    assert fetch(secured, "/probe", PASSWORD) == 400


def fetch(secured: Secured, path: str, password: str | None, header: str = "") -> int | str:
    """The answer's status, or the value of ``header`` in it."""
    context = ssl.create_default_context(cafile=secured.pki / "ca.crt")
    context.load_cert_chain(secured.pki / "client.crt", secured.pki / "client.key")
    request = urllib.request.Request(f"{secured.url}{path}")
    if password is not None:
        token = base64.b64encode(f"prometheus:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return str(response.headers[header]) if header else int(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.headers[header]) if header else exc.code
