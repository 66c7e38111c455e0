from __future__ import annotations

from tests.unit.test_wgquick import conf, peer
from vpnwatch import cli
from vpnwatch.probes import registry


def test_a_probe_that_raises_is_reported_as_a_bug_and_fails_the_check(write, monkeypatch, capsys):
    async def broken(target, timeout):
        raise RuntimeError("a bug")

    monkeypatch.setitem(registry.PROBES, "wireguard", broken)
    status = cli.main(["check", str(write("fra.conf", conf(peer())))])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_FAILED
    assert "probe of fra raised (a bug in vpnwatch)" in err
    assert "RuntimeError: a bug" in err  # the traceback, for the bug report
    assert out.splitlines() == ["TARGET  PROTOCOL  ENDPOINT  RESULT  FAILURE  STAGE  TIME"]


def test_usage_errors_exit_2(capsys):
    assert cli.main(["check"]) == cli.EXIT_USAGE
    assert "give a --config file, or files to probe" in capsys.readouterr().err
