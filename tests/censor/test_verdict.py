"""The verdict through the real Monitor: a censor that breaks the controls too is ``offline``.

With everything dropped, the vantage point looks cut off: no target may be called ``failing``.
With only WireGuard blocked by DPI, the controls still work, so WireGuard is ``failing``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.test_monitor_lab import Running
from vpnwatch.lab.censor import Censor
from vpnwatch.lab.wireguard import KeyPair

from .conftest import Lab

pytestmark = pytest.mark.lab

INTERVAL = 0.5


def write_config(lab: Lab, directory: Path) -> Path:
    client = KeyPair.generate()
    lab.wireguard.add_peer(client.public)
    (directory / "wg.conf").write_text(lab.wireguard.client_config(client))
    site = {"site": "lab"}
    tls, dns = lab.targets["tls"], lab.targets["dns"]
    config = {
        "settings": {"interval": INTERVAL, "timeout": 0.4, "listen": "127.0.0.1:0"},
        "targets": [
            {"from": "wg.conf", "name": "wg", "labels": site},
            {**tls.model_dump(include={"name", "protocol", "host", "port", "server_name", "ca"}),
             "labels": site},
            {**dns.model_dump(include={"name", "protocol", "host", "port", "query"}),
             "labels": site},
        ],
    }  # fmt: skip
    path = directory / "vpnwatch.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def verdicts(metrics: dict, target: str) -> dict[str, float]:
    return {
        dict(labels)["vpnwatch_verdict"]: value
        for (name, labels), value in metrics.items()
        if name == "vpnwatch_verdict" and dict(labels)["target"] == target
    }


@pytest.mark.parametrize(
    ("mode", "protocol", "verdict"),
    [(None, None, "ok"), ("drop", None, "offline"), ("dpi", "wireguard", "failing")],
)
async def test_verdict_under_the_censor(
    lab: Lab,
    censor: Censor,
    tmp_path: Path,
    mode: str | None,
    protocol: str | None,
    verdict: str,
) -> None:
    expected = {"ok": 0, "degraded": 0, "failing": 0, "offline": 0} | {verdict: 1}
    if mode is not None:
        censor.apply(mode, protocol)
    async with Running(write_config(lab, tmp_path)) as running:
        metrics = await running.metrics_once(lambda m: verdicts(m, "wg") == expected)
    states = verdicts(metrics, "wg")
    assert states == expected, states
