"""Bad input to ``vpnwatch status`` is one line and exit 2, before anything is fetched."""

from __future__ import annotations

import pytest

from vpnwatch import cli, exitcodes

#: Nothing listens on port 1: an error about Prometheus would mean it fetched first.
NOWHERE = "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "vpnwatch status: --days: 0 is not between 1 and 400\n"),
        (["--format", "pdf"], "vpnwatch status: --format pdf: give a file with -o\n"),
        (
            ["--at", "teatime"],
            "vpnwatch status: --at: 'teatime' is not a time: use RFC 3339"
            " (2024-03-10T14:00:00Z), a date, or now-24h\n",
        ),
        (["--step", "5 minutes"], "vpnwatch status: --step: '5 minutes' is not a duration like"
         " 30s, 5m, 1h30m or 7d\n"),
        (["--tz", "Mars/Olympus"], "vpnwatch status: --tz: 'Mars/Olympus' is not a known time"
         " zone (e.g. UTC, Asia/Karachi)\n"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--prometheus", NOWHERE, *args]) == exitcodes.EXIT_USAGE
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", message)


def test_unreachable_prometheus_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--prometheus", NOWHERE]) == 1
    assert capsys.readouterr().err.startswith(
        f"vpnwatch status: cannot reach Prometheus at {NOWHERE}"
    )
