"""The IKEv2 probe against the real charon, and the real client on the same files.

One gateway (strongSwan's charon with kernel-libipsec) serves the PSK, certificate and
EAP-MSCHAPv2 setups. Every case is a swanctl.conf a user would hold, read by vpnwatch's importer;
the same file is loaded into a second charon in its own namespace and ``swanctl --initiate``d,
and both must reach the same verdict.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from vpnwatch.importers import load_file
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.netns import Namespace
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.lab.strongswan import (
    CLOSED_PORT,
    SILENT_PORT,
    CharonClient,
    CharonGateway,
    ClientFiles,
    ClientNamespace,
)
from vpnwatch.probes.ikev2 import IKEV2
from vpnwatch.quality import TrainPlan, TunnelPlan
from vpnwatch.result import Failure, Result
from vpnwatch.targets.ikev2 import IKEv2Target

pytestmark = pytest.mark.lab

OK_TIMEOUT = 5.0
FAIL_TIMEOUT = 3.0
probe_ikev2 = IKEV2.probe()


@dataclass(frozen=True)
class Case:
    """A client file, made wrong on purpose or not, and what both clients must conclude."""

    name: str
    setup: str
    failure: Failure | None
    stage: str
    changes: tuple[tuple[str, object], ...] = ()


CASES = [
    Case("psk", "psk", None, "data"),
    Case("cert", "cert", None, "data"),
    Case("eap", "eap", None, "data"),
    # The gateway has no ecp384: it answers INVALID_KE_PAYLOAD and the retry with ecp256 works.
    Case("ke-retry", "psk", None, "data", (("proposals", "aes256gcm16-prfsha256-ecp384-ecp256"),)),
    Case("wrong-psk", "psk", Failure.AUTH, "ike_auth", (("psk", "not the lab's key"),)),
    Case("wrong-password", "eap", Failure.AUTH, "ike_auth", (("password", "not the password"),)),
    Case("unknown-ca", "cert", Failure.TLS_CERT, "ike_auth", (("ca", "other"),)),
    Case("no-proposal", "psk", Failure.PROTOCOL, "ike_sa_init", (("proposals", "aes256gcm16-prfsha256-ecp384"),)),
    Case("closed-port", "psk", Failure.REFUSED, "ike_sa_init", (("port", CLOSED_PORT),)),
    Case("silent-drop", "psk", Failure.TIMEOUT, "ike_sa_init", (("port", SILENT_PORT),)),
]  # fmt: skip


@pytest.fixture(scope="module")
def gateway(namespace: Namespace) -> Iterator[CharonGateway]:
    with CharonGateway(namespace) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def client(namespace: Namespace, gateway: CharonGateway) -> Iterator[CharonClient]:
    with ClientNamespace(namespace) as client_namespace, CharonClient(client_namespace) as client:
        yield client


@pytest.fixture(scope="module")
def files(
    gateway: CharonGateway, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ClientFiles]:
    """Each case's swanctl.conf, in a directory of its own as a user would keep it."""
    other_ca = CertificateAuthority.create("a CA the gateway never used").cert
    made = {}
    for case in CASES:
        changes = dict(case.changes)
        if changes.get("ca") == "other":
            changes["ca"] = other_ca
        directory = tmp_path_factory.mktemp(case.name)
        made[case.name] = gateway.client_conf(directory, case.setup, name=case.name, **changes)  # type: ignore[arg-type]
    return made


def target_of(files: ClientFiles, gateway: CharonGateway) -> IKEv2Target:
    """The file through the importer, pinging the address behind the gateway."""
    [target] = load_file(files.path)
    assert isinstance(target, IKEv2Target)
    return target.model_copy(update={"echo": ipaddress.IPv4Address(gateway.echo_address)})


def stage_names(result: Result) -> list[str]:
    return [stage for stage, _ in result.stages]


async def test_probes_leave_no_sa_behind(
    gateway: CharonGateway, files: dict[str, ClientFiles]
) -> None:
    """Each probe ends with an INFORMATIONAL delete: the gateway holds no IKE SA of ours.

    (Before the real client's test: terminated with --force, it leaves SAs to expire.)
    """
    targets = [target_of(files[name], gateway) for name in ("psk", "cert", "eap")]
    results = await asyncio.gather(*(probe_ikev2(target, OK_TIMEOUT) for target in targets))
    assert all(result.ok for result in results), results
    for _ in range(50):
        if not gateway.ike_sas():
            break
        await asyncio.sleep(0.1)
    assert gateway.ike_sas() == []


async def test_a_tunnel_test_carries_its_echo_train_in_esp_and_deletes_the_sa(
    gateway: CharonGateway, files: dict[str, ClientFiles]
) -> None:
    """The tunnel contract's train, burst and hold through the child SA, then the delete."""
    plan = TunnelPlan(
        timeout=20,
        train=TrainPlan(echoes=5, spacing=0.05, burst=8, hold_seconds=1.0, hold_spacing=0.05),
    )
    target = target_of(files["cert"], gateway)
    assert target.tunnel_ready
    result = await probe_ikev2(target, plan.timeout, tunnel=plan)
    assert result.ok, (result, gateway.log_tail())
    assert stage_names(result) == ["resolve", "ike_sa_init", "ike_auth", "data"]
    quality = result.tunnel
    assert quality is not None and quality.train_received == quality.train_sent == 5
    assert quality.goodput is not None and quality.goodput > 0 and not quality.cut
    assert result.degraded == ()
    for _ in range(50):
        if not gateway.ike_sas():
            break
        await asyncio.sleep(0.1)
    assert gateway.ike_sas() == []


async def test_every_case_gets_its_class_and_stage(
    gateway: CharonGateway, files: dict[str, ClientFiles]
) -> None:
    results = await asyncio.gather(
        *(
            probe_ikev2(
                target_of(files[c.name], gateway), OK_TIMEOUT if c.failure is None else FAIL_TIMEOUT
            )
            for c in CASES
        )
    )
    for case, result in zip(CASES, results, strict=True):
        assert (case.name, result.failure, result.stage) == (case.name, case.failure, case.stage), (
            result,
            gateway.log_tail(),
        )
    ok = {c.name: r for c, r in zip(CASES, results, strict=True) if r.ok}
    assert stage_names(ok["eap"]) == ["resolve", "ike_sa_init", "ike_auth", "data"]
    assert (
        "EAP-MSCHAPv2" in ok["eap"].detail
        and f"echo from {gateway.echo_address}" in ok["eap"].detail
    )
    assert "certificate CN=gw.lab.invalid" in ok["cert"].detail


async def test_the_real_client_agrees_on_every_case(
    gateway: CharonGateway, client: CharonClient, files: dict[str, ClientFiles]
) -> None:
    timeouts = [OK_TIMEOUT if case.failure is None else FAIL_TIMEOUT for case in CASES]
    probed = await asyncio.gather(
        *(
            probe_ikev2(target_of(files[c.name], gateway), t)
            for c, t in zip(CASES, timeouts, strict=True)
        )
    )
    # One at a time: swanctl --load-all replaces what the client charon had loaded.
    for case, result in zip(CASES, probed, strict=True):
        real = await asyncio.to_thread(client.initiate, files[case.name], OK_TIMEOUT)
        assert (case.name, result.ok, real) == (
            case.name,
            case.failure is None,
            case.failure is None,
        ), result


async def test_a_censor_dropping_ike_gives_a_timeout(
    namespace: Namespace, gateway: CharonGateway, files: dict[str, ClientFiles]
) -> None:
    target = target_of(files["psk"], gateway)
    with Censor(namespace).applied("dpi", protocol="ikev2"):
        result = await probe_ikev2(target, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TIMEOUT, "ike_sa_init")
    assert (await probe_ikev2(target, OK_TIMEOUT)).ok


async def test_a_censor_dropping_esp_lets_the_handshake_through_but_not_the_echo(
    namespace: Namespace, gateway: CharonGateway, files: dict[str, ClientFiles]
) -> None:
    target = target_of(files["psk"], gateway)
    with Censor(namespace).applied("drop-data", protocol="ikev2"):
        result = await probe_ikev2(target, FAIL_TIMEOUT)
    assert (result.failure, result.stage) == (Failure.TIMEOUT, "data")
    assert stage_names(result) == ["resolve", "ike_sa_init", "ike_auth"]
