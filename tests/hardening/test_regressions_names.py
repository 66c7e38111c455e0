"""Round two of the hostile-input findings (issue 22) about names, numbers and the command line.

Each test is the finding's smallest reproduction; the report's own (formats, a hostile
Prometheus) are in tests/report/test_hostile_labels.py and test_hostile_prometheus.py.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import new_key
from vpnwatch import cli, exitcodes
from vpnwatch.check import TableOutput
from vpnwatch.config import load_config
from vpnwatch.errors import ConfigError
from vpnwatch.lab.pki import CertificateAuthority
from vpnwatch.logs import setup_logging
from vpnwatch.printable import printable
from vpnwatch.result import Failure, LocalError, LocalReason, Result

PEER = new_key()
Write = Callable[[str, str], Path]


def _inline(**fields: object) -> str:
    target = {
        "name": "x",
        "protocol": "tcp",
        "host": "127.0.0.1",
        "port": 1,
        **fields,
    }
    return json.dumps({"targets": [target]})  # JSON is YAML, and writes any character


# -- 7: names are printable text; anything printed is escaped -------------------------------------

FORGING_NAMES = [
    "a\n2026-01-01 00:00:00,000 INFO target b first probe: ok",
    "nul\x00byte",
    "\x1b]0;title\x07\x1b[2J",
    "bidi \u202eevil",
    "tab\tname",
    "line\u2028separator",
    " leading space",
    "trailing space ",
]


@pytest.mark.parametrize("name", FORGING_NAMES)
def test_a_target_name_with_control_characters_is_refused(write: Write, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write("vpnwatch.yml", _inline(name=name)))
    text = str(info.value)
    assert f"targets[0] ({printable(name)}): name: must be printable text" in text
    assert text.isprintable()


@pytest.mark.parametrize("value", ["x\ny", "\x1b[31m", "\u202e"])
def test_a_label_value_with_control_characters_is_refused(write: Write, value: str) -> None:
    with pytest.raises(ConfigError, match=r"labels\.site: must be printable") as info:
        load_config(write("vpnwatch.yml", _inline(labels={"site": value})))
    assert str(info.value).isprintable()


def test_names_of_any_script_with_inner_spaces_and_punctuation_are_accepted(write: Write) -> None:
    names = ["کراچی 1", "Москва/wg0", "fra-1 (backup) #2", "東京:443"]
    text = json.dumps({"targets": [json.loads(_inline(name=n))["targets"][0] for n in names]})
    assert [job.name for job in load_config(write("vpnwatch.yml", text)).jobs] == names


def test_a_file_name_with_a_newline_is_escaped_in_the_error(write: Write, tmp_path: Path) -> None:
    path = write("forged\nERROR line.yml", "settings: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{tmp_path}/forged\\nERROR line.yml: no targets: give a config" + (
        " file with targets, or files to probe"
    )


def test_text_logs_escape_what_they_are_given(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("text")
    logging.getLogger("vpnwatch").warning("target %s failing", "a\nINFO forged\x1b[2J")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "target a\\nINFO forged\\x1b[2J failing" in err


def test_printable_leaves_every_script_alone_and_escapes_the_rest() -> None:
    assert printable("کراچی Москва 東京 😀") == "کراچی Москва 東京 😀"
    assert printable("a\\b\n\x00\x1b\u202e\U000e0001") == "a\\\\b\\n\\x00\\x1b\\u202e\\U000e0001"


def test_config_check_prints_no_raw_control_character(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("ok\x1b[2J.yml", _inline())
    assert cli.main(["config", "check", str(path)]) == exitcodes.EXIT_OK
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "ok\\x1b[2J.yml: 1 targets, ok" in out


def test_check_table_escapes_what_a_peer_or_host_put_in_a_detail(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    # Names and endpoints are refused unprintable at load; a detail is the probe's text, and a
    # local error's comes from the host: the table escapes every cell and line all the same.
    target = load_config(write("vpnwatch.yml", _inline(name="كراچی x"))).jobs[0].target
    table = TableOutput([(target, 5.0)])
    forged = "refused\n2026-01-01 INFO x: ok\x1b[2J\u202e"
    failed = Result(
        target.name, "tcp", ok=False, failure=Failure.REFUSED, stage="connect", stages=(),
        duration=0.001, detail=forged,
    )  # fmt: skip
    table.show(target, failed)
    table.show(target, LocalError(LocalReason.INTERNAL, forged))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert out.count("\n") == 5  # header, two rows, two detail lines
    assert "  كراچی x: refused\\n2026-01-01 INFO x: ok\\x1b[2J\\u202e\n" in out
    assert "could not be probed here: refused\\n2026" in out


# -- 8: every number finite and bounded -----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"interval": ".inf"}, "settings.interval: Input should be a finite number"),
        ({"interval": "1e308"}, "settings.interval: Input should be less than or equal to 86400"),
        ({"interval": ".nan"}, "settings.interval: Input should be a finite number"),
        ({"interval": 100000, "timeout": 10}, "less than or equal to 86400"),
        ({"timeout": ".inf"}, "settings.timeout: Input should be a finite number"),
        ({"interval": 7200, "timeout": 7200}, "settings.timeout: Input should be less than"),
    ],
)
def test_settings_numbers_are_finite_and_bounded(
    write: Write, settings: dict[str, object], problem: str
) -> None:
    yaml_settings = ", ".join(f"{k}: {v}" for k, v in settings.items())
    target = json.dumps(json.loads(_inline())["targets"])
    path = write("vpnwatch.yml", f"settings: {{{yaml_settings}}}\ntargets: {target}\n")
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


@pytest.mark.parametrize("value", [".inf", "1e308", "-.inf", ".nan"])
@pytest.mark.parametrize("field", ["interval", "timeout"])
def test_a_targets_interval_and_timeout_are_finite_and_bounded(
    write: Write, field: str, value: str
) -> None:
    path = write(
        "vpnwatch.yml",
        f"targets: [{{name: x, protocol: tcp, host: 127.0.0.1, port: 1, {field}: {value}}}]\n",
    )
    with pytest.raises(ConfigError, match=rf"targets\[0\] \(x\): {field}: Input should be"):
        load_config(path)


def test_the_command_line_interval_is_bounded_too(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("vpnwatch.yml", _inline())
    assert cli.main(["run", "--config", str(path), "--interval", "inf"]) == exitcodes.EXIT_USAGE
    assert "command line: interval: Input should be a finite number" in capsys.readouterr().err


# -- 5: a listen address already in use -----------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_run_on_a_listen_address_in_use_is_one_line_and_exit_2(
    write: Write, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("vpnwatch.yml", _inline())
    status = cli.main(["run", "--config", str(path), "--listen", f"127.0.0.1:{busy_port}"])
    err = capsys.readouterr().err
    assert status == exitcodes.EXIT_USAGE
    assert err == f"vpnwatch: cannot listen on 127.0.0.1:{busy_port}: Address already in use\n"


def test_run_with_tls_on_a_listen_address_in_use_is_one_line_and_exit_2(
    write: Write, busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    CertificateAuthority.create().issue("vpnwatch", server=True).write(tmp_path, "server")
    web = write("web.yml", "tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    path = write("vpnwatch.yml", _inline())
    argv = ["run", "--config", str(path), "--listen", f"127.0.0.1:{busy_port}"]
    status = cli.main([*argv, "--web.config.file", str(web)])
    err = capsys.readouterr().err
    assert status == exitcodes.EXIT_USAGE
    assert err == f"vpnwatch: cannot listen on 127.0.0.1:{busy_port}: Address already in use\n"
