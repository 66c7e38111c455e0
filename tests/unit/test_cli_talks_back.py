"""What the CLI says: every problem of a target, values in limits, global options anywhere,
one line for a file it may not read or write, and completion in the real shells."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_wgquick import conf, peer
from vpnwatch import cli, exitcodes
from vpnwatch.probes import registry

VENV_BIN = Path(sys.executable).parent
NOBODY = 65534


def test_every_problem_of_a_target_is_listed(write, capsys):
    key = write("k.key", "x")
    config = write(
        "two.yml",
        "targets: [{name: x, protocol: wireguard, host: '', port: 0, public_key: AAAA,"
        f" private_key_file: {key}}}]\n",
    )
    assert cli.main(["config", "check", str(config)]) == exitcodes.EXIT_USAGE
    assert capsys.readouterr().err == (
        f"vpnwatch: {config}: targets[0] (x): host: String should have at least 1 character;"
        " port: Input should be greater than or equal to 1; private_key: is not valid base64;"
        " public_key: decodes to 3 bytes, not 32\n"
    )


def test_timeout_above_interval_says_both_values(write, capsys):
    config = write("slow.yml", "settings: {interval: 5, timeout: 10}\n")
    assert cli.main(["config", "check", str(config)]) == exitcodes.EXIT_USAGE
    assert capsys.readouterr().err == (
        f"vpnwatch: {config}: settings: timeout (10 s) must not exceed interval (5 s)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-format", "json", "--log-level", "warning", "config", "check", "f.yml"],
        ["config", "check", "f.yml", "--log-format", "json", "--log-level", "warning"],
        ["--log-format", "json", "config", "check", "--log-level", "warning", "f.yml"],
    ],
)
def test_global_options_before_or_after_the_subcommand(argv):
    args = cli._parser().parse_args(argv)
    assert (args.log_format, args.log_level, args.verbose) == ("json", "warning", False)


def test_an_option_before_the_subcommand_is_not_reset_by_it():
    args = cli._parser().parse_args(["-v", "--log-format", "json", "report", "--prometheus", "x"])
    assert (args.log_format, args.log_level, args.verbose) == ("json", "info", True)


def test_log_format_after_the_subcommand_gives_json_logs(write, monkeypatch, capsys):
    async def broken(target, timeout):
        raise RuntimeError("a bug")

    monkeypatch.setitem(registry.PROBES, "wireguard", broken)
    status = cli.main(["check", str(write("fra.conf", conf(peer()))), "--log-format", "json"])
    assert status == exitcodes.EXIT_LOCAL
    line, summary = capsys.readouterr().err.splitlines()
    assert summary == "vpnwatch: 1 targets: 0 ok, 0 failed, 1 could not be probed here"
    entry = json.loads(line)
    assert (entry["level"], entry["message"]) == (
        "error",
        "probe of fra raised (a bug in vpnwatch)",
    )


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A directory only root may read or write, inside one everybody may enter."""
    with tempfile.TemporaryDirectory(prefix="vpnwatch-perm-") as top:
        os.chmod(top, 0o755)
        private = Path(top) / "private"
        private.mkdir(mode=0o700)
        (private / "vpnwatch.yml").write_text("targets: []\n")
        yield private


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    # setpriv (util-linux), as subprocess's own user= cannot run the pyenv interpreter here
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*drop, str(VENV_BIN / "vpnwatch"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_file_it_may_not_read_is_one_line(private_dir):
    config = private_dir / "vpnwatch.yml"
    done = _as_nobody("config", "check", str(config))
    assert (done.returncode, done.stdout) == (exitcodes.EXIT_USAGE, "")
    assert done.stderr == f"vpnwatch: {config}: cannot read: Permission denied\n"


@pytest.mark.parametrize("command", ["report", "status"])
def test_an_output_it_may_not_write_is_one_line_before_any_fetch(private_dir, command):
    output = private_dir / "page.html"
    # nothing listens on port 1: had it fetched first, the error would be about Prometheus
    done = _as_nobody(command, "--prometheus", "http://127.0.0.1:1", "-o", str(output))
    assert (done.returncode, done.stdout) == (exitcodes.EXIT_USAGE, "")
    assert done.stderr == f"vpnwatch {command}: {output}: cannot write: Permission denied\n"


def _shell(shell: str, script: str) -> str:
    if shutil.which(shell) is None:
        pytest.fail(f"{shell} is not installed (scripts/apt-packages.txt lists it)")
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        [shell, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    return done.stdout


def test_bash_completes_subcommands_and_options():
    script = (
        "source <(vpnwatch completion bash); complete -p vpnwatch >/dev/null;"
        ' COMP_LINE="vpnwatch status --sh"; COMP_POINT=${#COMP_LINE};'
        " COMP_WORDS=(vpnwatch status --sh); COMP_CWORD=2;"
        ' _python_argcomplete vpnwatch --sh status; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    assert _shell("bash", script).split() == ["--show-endpoints"]


def test_fish_completes_subcommands_with_their_help():
    script = 'vpnwatch completion fish | source; complete -C "vpnwatch sta"'
    assert _shell("fish", script) == (
        "stack\tthe Prometheus, Alertmanager and Grafana stack shipped with vpnwatch\n"
        "status\twrite a public status page (HTML or PDF): each protocol at each site, 90 days\n"
    )


def test_zsh_reads_its_completion_script():
    script = "autoload -U compinit && compinit -u && source <(vpnwatch completion zsh) && echo ok"
    assert _shell("zsh", script) == "ok\n"
