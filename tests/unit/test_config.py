from __future__ import annotations

import pytest

from tests.conftest import new_key
from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError

PRIVATE = new_key()
PEER = new_key()
CONF = f"[Interface]\nPrivateKey = {PRIVATE}\n[Peer]\nPublicKey = {PEER}\nEndpoint = 198.18.0.2:51820\n"


@pytest.fixture
def files(write):
    write("fra.conf", CONF)
    write("ams.conf", CONF.replace("198.18.0.2", "198.18.0.6"))
    write("probe.key", PRIVATE + "\n")
    return write


def test_inline_from_and_include_targets_with_overrides(files):
    config = files(
        "vpnwatch.yml",
        f"""
settings: {{interval: 30, timeout: 5, concurrency: 8}}
include: ["a*.conf"]
targets:
  - from: fra.conf
    name: frankfurt
    interval: 10
    labels: {{provider: acme, region: eu}}
  - name: inline
    protocol: wireguard
    host: 198.18.0.2
    port: 51820
    private_key_file: probe.key
    public_key: {PEER}
    role: control
""",
    )
    loaded = load_config(config)
    jobs = {job.name: job for job in loaded.jobs}
    assert set(jobs) == {"frankfurt", "inline", "ams"}
    assert (jobs["frankfurt"].interval, jobs["frankfurt"].timeout) == (10, 5)
    assert jobs["frankfurt"].target.labels == {"provider": "acme", "region": "eu"}
    assert jobs["ams"].interval == 30
    assert jobs["inline"].target.role == "control"
    assert loaded.settings.concurrency == 8


def test_plain_files_and_command_line_overrides(files, tmp_path):
    loaded = load_config(None, [tmp_path / "fra.conf"], overrides={"interval": 5, "timeout": 2})
    (job,) = loaded.jobs
    assert (job.name, job.interval, job.timeout) == ("fra", 5, 2)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "settings: {intervall: 3}\ntargets: [{from: fra.conf}]",
            "settings.intervall: Extra inputs are not permitted",
        ),
        (
            "settings: {interval: soon}\ntargets: [{from: fra.conf}]",
            "settings.interval: Input should be a valid number",
        ),
        (
            "settings: {interval: 5, timeout: 10}",
            "settings: timeout (10 s) must not exceed interval (5 s)",
        ),
        ("targets: [{from: gone.conf}]", "gone.conf: no such file"),
        (
            "targets: [{from: fra.conf, colour: red}]",
            "targets[0]: colour: Extra inputs are not permitted",
        ),
        ("targets: [{from: fra.conf}, {from: fra.conf}]", "duplicate target name 'fra'"),
        ("targets: [{from: fra.conf, labels: {job: x}}]", "labels: label 'job' is reserved"),
        (
            "targets: [{from: fra.conf, labels: {bad-name: x}}]",
            "is not a valid Prometheus label name",
        ),
        ("targets: [{name: x, protocol: carrier-pigeon}]", "targets[0] (x): protocol: give one of"),
        (
            "targets: [{name: x, protocol: wireguard, host: h, port: 1, private_key_file: nokey, public_key: AAAA}]",
            "private_key_file: cannot read",
        ),
        (
            "targets: [{name: x, protocol: wireguard, host: h, port: 0, private_key_file: probe.key, public_key: "
            + PEER
            + "}]",
            "targets[0] (x): port: Input should be greater than or equal to 1",
        ),
        ("include: ['none-*.conf']", "include pattern 'none-*.conf' matches no file"),
        ("targets: [", "line 1: expected the node content"),
        ("{}", "no targets"),
    ],
)
def test_bad_configs_fail_at_load_with_one_line(files, yaml_text, message):
    with pytest.raises(ConfigError) as info:
        load_config(files("vpnwatch.yml", yaml_text))
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert PRIVATE not in text


def test_a_private_key_written_inline_is_never_echoed(files):
    bad = PRIVATE[:-2]
    config = files(
        "vpnwatch.yml",
        f"targets: [{{name: x, protocol: wireguard, host: h, port: 1, private_key: '{bad}', public_key: {PEER}}}]",
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert bad not in str(info.value)


def test_from_entries_override_any_field_of_the_imported_target(files):
    config = files("vpnwatch.yml", "targets: [{from: fra.conf, keepalive: false, timeout: 3}]")
    (job,) = load_config(config).jobs
    assert job.target.keepalive is False
    assert job.timeout == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("interval: -1", "interval: Input should be greater than 0"),
        ("data: echo", "data: Extra inputs are not permitted"),
    ],
)
def test_overrides_are_validated_by_the_protocol_model(files, override, message):
    config = files("vpnwatch.yml", f"targets: [{{from: fra.conf, name: fra, {override}}}]")
    with pytest.raises(ConfigError, match=rf"targets\[0\] \(fra\): {message}"):
        load_config(config)


def test_the_evidence_directory_is_relative_to_the_config(files, tmp_path):
    config = files(
        "vpnwatch.yml", "settings: {evidence: {directory: captures}}\ntargets: [{from: fra.conf}]"
    )
    assert load_config(config).settings.evidence.directory == tmp_path / "captures"
