"""The web config file: exporter-toolkit format, one clear line for every mistake, and the
on-demand probe endpoint's bound."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import bcrypt
import pytest
from aiohttp.test_utils import make_mocked_request

from vpnwatch.cli import main
from vpnwatch.errors import ConfigError
from vpnwatch.jobs import Job
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.ondemand import OnDemand
from vpnwatch.result import Result
from vpnwatch.targets.control import TcpTarget
from vpnwatch.webconfig import load_web_config

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("basic_auth_users: {alice: s3cret}\n", "basic_auth_users.alice: String should match"),
        ("basic_auth_users: {alice: 12}\n", "every user needs a bcrypt hash"),
        ("tls_server_config: {cert_file: a.crt}\n", "tls_server_config.key_file: Field required"),
        ("tls_config: {}\n", "tls_config: Extra inputs are not permitted"),
        ("tls_server_config: {cert_file: a.crt, key_file: a.key}\n",
         "tls_server_config.cert_file/key_file: cannot load the certificate and key"),
        ("basic_auth_users: [\n", "not valid YAML"),
        ("http_server_config: {headers: {Server: x}}\n",
         "http_server_config.headers.Server.[key]: Input should be"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_naming_file_and_field(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_client_auth_needs_a_client_ca(tmp_path: Path):
    ca = CertificateAuthority.create()
    ca.issue("vpnwatch", server=True).write(tmp_path, "server")
    path = write(
        tmp_path,
        "tls_server_config: {cert_file: server.crt, key_file: server.key,"
        " client_auth_type: RequireAndVerifyClientCert}\n",
    )
    with pytest.raises(ConfigError, match="client_auth_type: RequireAndVerifyClientCert needs"):
        load_web_config(path)


def test_a_bad_web_config_exits_2_with_one_line(tmp_path: Path, capsys):
    path = write(tmp_path, "basic_auth_users: {alice: plain}\n")
    config = tmp_path / "vpnwatch.yml"
    config.write_text("targets:\n  - {name: c, protocol: tcp, host: 127.0.0.1, port: 9}\n")
    assert main(["run", "--config", str(config), "--web.config.file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "basic_auth_users.alice" in err and "plain" not in err


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_passwords_are_checked_against_bcrypt(tmp_path: Path):
    web = load_web_config(write(tmp_path, f"basic_auth_users: {{alice: '{HASH}'}}\n"))
    assert web.ssl_context is None
    assert await web.allows(basic("alice", "s3cret"))
    assert await web.allows(basic("alice", "s3cret"))  # remembered, still right
    assert not await web.allows(basic("alice", "s3cret!"))
    assert not await web.allows(basic("bob", "s3cret"))
    assert not await web.allows(basic("alice", "x" * 100))
    assert not await web.allows("Bearer abc")
    assert not await web.allows("Basic !!!")
    assert not await web.allows(None)


async def test_on_demand_probes_are_bounded():
    release = asyncio.Event()

    async def slow_probe(target: TcpTarget, timeout: float) -> Result:
        await release.wait()
        return Result(target.name, "tcp", True, None, "connect", (("connect", 0.01),), 0.01)

    target = TcpTarget(name="ctl", host="127.0.0.1", port=9)
    jobs = {"ctl": Job(target, interval=60, timeout=5, source="test")}
    on_demand = OnDemand(lambda: jobs, {"tcp": slow_probe}, limit=2)
    request = make_mocked_request("GET", "/probe?target=ctl")
    running = [asyncio.create_task(on_demand.handle(request)) for _ in range(2)]
    await asyncio.sleep(0)
    refused = await on_demand.handle(request)
    assert refused.status == 503
    release.set()
    answers = await asyncio.gather(*running)
    assert [a.status for a in answers] == [200, 200]
    assert b'vpnwatch_probe_success{target="ctl",protocol="tcp"} 1\n' in answers[0].body
    assert (await on_demand.handle(request)).status == 200  # the slots were given back
