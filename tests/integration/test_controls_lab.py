"""Control probes against real servers in a lab namespace: openssl s_server and dnsmasq."""

from __future__ import annotations

import time

import pytest

from vpnwatch.lab.controls import LAB_NAME, start_controls
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.probes.control import DNS, TCP, TLS
from vpnwatch.result import Result
from vpnwatch.targets.control import DnsTarget, TcpTarget, TlsTarget

pytestmark = pytest.mark.lab

probe_tcp, probe_tls, probe_dns = TCP.probe(), TLS.probe(), DNS.probe()


def stage_names(result: Result) -> list[str]:
    return [stage for stage, _ in result.stages]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("controls")
    with Namespace() as ns:
        yield ns, start_controls(ns, directory), directory


async def test_tcp_connects_and_a_closed_port_is_refused(lab):
    ns, controls, _ = lab
    ok = await probe_tcp(TcpTarget(name="tcp", host=ns.ip, port=controls.tls_port), 2)
    assert (ok.ok, ok.stage, stage_names(ok)) == (True, "connect", ["resolve", "connect"])
    closed = await probe_tcp(TcpTarget(name="tcp", host=ns.ip, port=9), 2)
    assert (closed.ok, closed.failure, closed.stage) == (False, "refused", "connect")
    assert stage_names(closed) == ["resolve"]


async def test_a_name_that_does_not_resolve_fails_at_resolve(lab):
    result = await probe_tcp(TcpTarget(name="tcp", host="nowhere.invalid", port=443), 2)
    assert (result.failure, result.stage, stage_names(result)) == ("dns", "resolve", [])


async def test_tls_verifies_the_certificate(lab, tmp_path):
    ns, controls, _ = lab
    target = TlsTarget(
        name="tls",
        host=ns.ip,
        port=controls.tls_port,
        server_name=controls.server_name,
        ca=controls.ca,
    )
    result = await probe_tls(target, 3)
    assert result.ok, result
    assert (result.stage, stage_names(result)) == ("tls", ["resolve", "connect", "tls"])
    assert result.detail.startswith("TLSv1.")
    # The lab's leaf certificate is fresh: valid from now on, for less than a working life.
    assert result.certificate_not_after is not None
    assert time.time() < result.certificate_not_after < time.time() + 40 * 365 * 86400

    other_ca = CertificateAuthority.create().cert
    wrong_ca = await probe_tls(target.model_copy(update={"ca": other_ca}), 3)
    assert (wrong_ca.failure, wrong_ca.stage) == ("tls_cert", "tls")
    assert wrong_ca.certificate_not_after is None  # a certificate that did not verify says nothing
    assert stage_names(wrong_ca) == ["resolve", "connect"]
    assert "certificate" in wrong_ca.detail
    wrong_name = await probe_tls(
        target.model_copy(update={"server_name": "other.vpnwatch.test"}), 3
    )
    assert (wrong_name.failure, wrong_name.stage) == ("tls_cert", "tls")
    assert "certificate" in wrong_name.detail


async def test_dns_answers_and_silence_times_out(lab):
    ns, controls, _ = lab
    result = await probe_dns(
        DnsTarget(name="dns", host=ns.ip, port=controls.dns_port, query=LAB_NAME), 3
    )
    assert result.ok, result
    assert (result.stage, stage_names(result)) == ("answer", ["resolve", "answer"])
    assert result.detail.startswith("NOERROR, 1 records")
    closed = await probe_dns(DnsTarget(name="dns", host=ns.ip, port=5353, query=LAB_NAME), 2)
    assert (closed.failure, closed.stage) == ("refused", "answer")
    assert stage_names(closed) == ["resolve"]
