from __future__ import annotations

import json

from tests.unit.test_wgquick import conf, peer
from vpnwatch import cli, exitcodes
from vpnwatch.probes import registry
from vpnwatch.result import LocalError, LocalReason


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
