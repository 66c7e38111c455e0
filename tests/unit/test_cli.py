from __future__ import annotations

import json

from tests.importers.test_bridgeline import CERT, MEEK, SNOWFLAKE
from tests.unit.test_wgquick import conf, peer
from vpnwatch import cli, exitcodes
from vpnwatch.probes import registry
from vpnwatch.result import Failure, LocalError, LocalReason, Timeline


def test_a_probe_that_raises_is_a_bug_not_a_verdict(write, monkeypatch, capsys):
    async def broken(target, timeout):
        raise RuntimeError("a bug")

    monkeypatch.setitem(registry.PROBES, "wireguard", broken)
    status = cli.main(["check", str(write("fra.conf", conf(peer())))])
    out, err = capsys.readouterr()
    assert status == exitcodes.EXIT_LOCAL
    assert "probe of fra raised (a bug in vpnwatch)" in err
    assert "RuntimeError: a bug" in err  # the traceback, for the bug report
    assert out.splitlines() == [
        "TARGET  PROTOCOL   ENDPOINT          RESULT  FAILURE           STAGE      TIME",
        "fra     wireguard  198.18.0.2:51820  ERROR   internal          -          -",
        "  fra: could not be probed here: the probe raised (a bug in vpnwatch)",
    ]
    assert err.splitlines()[-1] == "vpnwatch: 1 targets: 0 ok, 0 failed, 1 could not be probed here"


def test_a_local_error_is_shown_as_an_error_and_exits_3(write, monkeypatch, capsys):
    async def starved(target, timeout):
        raise LocalError(LocalReason.FILE_DESCRIPTORS, f"{target.endpoint}: Too many open files")

    monkeypatch.setitem(registry.PROBES, "wireguard", starved)
    status = cli.main(["check", "--json", str(write("fra.conf", conf(peer())))])
    out, _ = capsys.readouterr()
    assert status == exitcodes.EXIT_LOCAL
    record = json.loads(out)
    assert record["ok"] is False
    assert record["failure"] is None  # no verdict on the endpoint
    assert record["error"] == "file_descriptors"


def test_usage_errors_exit_2(capsys):
    assert cli.main(["check"]) == exitcodes.EXIT_USAGE
    assert "give a --config file, or files to probe" in capsys.readouterr().err


def _mixed_bridges(write):
    return write(
        "bridges.txt",
        f"obfs4 192.0.2.3:443 cert={CERT} iat-mode=0\n{SNOWFLAKE}\n{MEEK}\n",
    )


def test_config_check_lists_the_skipped_entries_of_a_file(write, capsys):
    path = _mixed_bridges(write)
    assert cli.main(["config", "check", str(path)]) == exitcodes.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["bridges", "obfs4", "tcp", "192.0.2.3:443"]
    assert lines[1:3] == [
        f"skipped  {path}: line 2: snowflake bridge: vpnwatch does not speak the snowflake"
        " transport (only obfs4)",
        f"skipped  {path}: line 3: meek_lite bridge: vpnwatch does not speak the meek_lite"
        " transport (only obfs4)",
    ]
    assert lines[-1] == f"{path}: 1 targets, 2 skipped, ok"


def test_config_check_json_and_a_yaml_config_importing_the_file(write, capsys):
    path = _mixed_bridges(write)
    config = write("vpnwatch.yml", f"targets:\n  - {{from: {path.name}, labels: {{site: x}}}}\n")
    assert cli.main(["config", "check", "--json", str(config)]) == exitcodes.EXIT_OK
    document = json.loads(capsys.readouterr().out)
    [target] = document["targets"]
    assert (target["target"], target["protocol"], target["labels"]) == (
        "bridges",
        "obfs4",
        {"site": "x"},
    )
    assert [(s["source"], s["where"], s["entry"]) for s in document["skipped"]] == [
        (str(path), "line 2", "snowflake bridge"),
        (str(path), "line 3", "meek_lite bridge"),
    ]


def test_check_names_the_skipped_entries_on_stderr(write, monkeypatch, capsys):
    async def down(target, timeout):
        return Timeline(target.name, target.protocol).failed(Failure.REFUSED, "connect")

    monkeypatch.setitem(registry.PROBES, "obfs4", down)
    path = _mixed_bridges(write)
    assert cli.main(["check", str(path)]) == exitcodes.EXIT_FAILED
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"vpnwatch: skipped {path}: line 2: snowflake bridge")
    assert err[-1] == "vpnwatch: 1 targets: 0 ok, 1 failed; 2 entries skipped"
