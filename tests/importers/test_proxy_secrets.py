"""Proxy passwords and subscription tokens never come out of config check or check."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from vpnwatch import cli

PASSWORD = "Zq8-proxy-secret-41"


def needles() -> dict[str, str]:
    raw = PASSWORD.encode()
    return {
        "raw": PASSWORD,
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "sha224 hex": hashlib.sha224(raw).hexdigest(),
    }


@pytest.mark.parametrize(
    "argv", [["config", "check"], ["config", "check", "--json"], ["check"], ["check", "--json"]]
)
def test_no_password_in_any_output(
    write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    userinfo = base64.urlsafe_b64encode(f"aes-256-gcm:{PASSWORD}".encode()).decode().rstrip("=")
    path = write(
        "mine.links",
        f"ss://{userinfo}@127.0.0.1:9/?plugin=obfs-local%3Bobfs%3Dhttp#ss\n"
        f"trojan://{PASSWORD}@127.0.0.1:9?sni=x.invalid#tj\n"
        f"vless://{PASSWORD}@127.0.0.1:9#v\n",
    )
    cli.main(["--log-level", "debug", *argv, str(path)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "tj" in text and "vless:// link" in text
    for kind, needle in needles().items():
        assert needle not in text, f"the password ({kind}) in {argv}"
