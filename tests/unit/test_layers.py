"""Layers that point one way, checked on what a fresh interpreter actually imports."""

from __future__ import annotations

import argparse
import base64
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from vpnwatch import cli


def imported_by(code: str) -> set[str]:
    """The vpnwatch modules a fresh interpreter has loaded after running ``code``."""
    probe = (
        f"{code}\nimport sys\nprint('\\n'.join(m for m in sys.modules if m.startswith('vpnwatch')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("vpnwatch.config", ("vpnwatch.evidence", "vpnwatch.probes", "vpnwatch.lab")),
        ("vpnwatch.scheduler", ("vpnwatch.config",)),
        ("vpnwatch.metrics", ("vpnwatch.config",)),
        ("vpnwatch.monitor", ("vpnwatch.lab",)),
    ],
)
def test_a_module_does_not_reach_across_layers(module: str, forbidden: tuple[str, ...]) -> None:
    loaded = imported_by(f"import {module}")
    assert not {m for m in loaded if m.startswith(forbidden)}


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"], ["run", "--help"]])
def test_commands_outside_lab_and_demo_never_load_the_lab(argv: list[str]) -> None:
    loaded = imported_by(
        f"from vpnwatch import cli\ntry:\n cli.main({argv!r})\nexcept SystemExit:\n pass"
    )
    assert not {m for m in loaded if m.startswith("vpnwatch.lab")}
    assert "vpnwatch.report.cli" not in loaded


def test_placeholders_say_what_the_real_commands_say() -> None:
    """The list of commands shows the delegated ones without loading them: the same help."""

    def helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
        (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {choice.dest: choice.help for choice in action._choices_actions}

    assert helps(cli._parser(load=())) == helps(cli._parser())


@pytest.mark.parametrize("name", sorted(cli.DELEGATED))
def test_every_delegated_module_defines_its_command(name: str) -> None:
    module, function, _ = cli.DELEGATED[name]
    assert callable(getattr(importlib.import_module(module), function))


def test_importing_the_configuration_builds_no_validator() -> None:
    """Every model is built when first used: `vpnwatch check FILE` pays for the one it needs.

    A model without ``defer_build`` (or one instantiated at class level, as a default) builds
    its validator at import, tens of milliseconds on every command.
    """
    probe = (
        "import pydantic, vpnwatch.config, vpnwatch.check, vpnwatch.registry as r\n"
        "for p in r.PROTOCOLS: r.target_model(p)\n"
        "def every(c): return [c, *(s for k in c.__subclasses__() for s in every(k))]\n"
        "print(' '.join(c.__name__ for c in every(pydantic.BaseModel)"
        " if c.__module__.startswith('vpnwatch') and c.__pydantic_complete__))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == []


def test_a_handshake_check_loads_no_tunnel_test_and_no_libsodium(tmp_path: Path) -> None:
    """What only tunnel tests and cookie replies need stays out of `vpnwatch check` of a file."""
    conf = tmp_path / "one.conf"
    key = base64.b64encode(bytes(range(32))).decode()
    conf.write_text(
        f"[Interface]\nPrivateKey = {key}\n\n[Peer]\nPublicKey = {key}\n"
        "AllowedIPs = 0.0.0.0/0\nEndpoint = 127.0.0.1:9\n"
    )
    conf.chmod(0o600)
    code = f"from vpnwatch import cli\ntry:\n cli.main(['check', {str(conf)!r}])\nexcept SystemExit:\n pass"
    probe = f"{code}\nimport sys\nprint(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.splitlines()[-1].split())  # after check's own table
    assert "vpnwatch.protocols.wireguard" in loaded
    assert not {m for m in loaded if m.startswith(("vpnwatch.protocols.tunnel", "nacl"))}
