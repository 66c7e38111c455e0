"""Packaging: the license, the Docker image's constraints, and the stack a pip user gets from
``vpnwatch stack write`` without a clone — checked on a wheel built from this tree."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from vpnwatch import __version__
from vpnwatch.cli import main
from vpnwatch.stack import stack_files

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: Where each file of a written stack comes from in the repo.
SOURCES = {".env.example": ".env.example", ".dockerignore": None}


def test_the_license_is_the_apache_2_text():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert PYPROJECT["project"]["license"] == "Apache-2.0"


def test_constraints_pin_every_dependency_within_what_pyproject_allows():
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    for requirement in map(Requirement, PYPROJECT["project"]["dependencies"]):
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"constraints.txt does not pin {name}: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {requirement}"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert '-c constraints.txt "$VPNWATCH_REQUIREMENT"' in dockerfile


def test_the_written_stack_is_the_repo_stack_building_the_released_package(tmp_path: Path):
    assert main(["stack", "write", str(tmp_path)]) == 0
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert {"docker-compose.yml", ".env.example", "Dockerfile", "constraints.txt",
            "dashboards/vpnwatch.json", "deploy/prometheus/rules/vpnwatch.rules.yml",
            "deploy/alertmanager/alertmanager.yml", "deploy/site/docker-compose.yml",
            "deploy/grafana/provisioning/datasources/prometheus.yml"} <= written  # fmt: skip
    for name in written - {".dockerignore", "docker-compose.yml", "deploy/site/docker-compose.yml"}:
        assert (tmp_path / name).read_bytes() == (REPO / name).read_bytes(), name
    for compose in ("docker-compose.yml", "deploy/site/docker-compose.yml"):
        service = yaml.safe_load((tmp_path / compose).read_text())["services"]["vpnwatch"]
        assert service["build"]["args"] == {"VPNWATCH_REQUIREMENT": f"vpnwatch=={__version__}"}
        context = (tmp_path / compose).parent / service["build"]["context"]
        assert (context / "Dockerfile").is_file() and (context / "constraints.txt").is_file()
    ignored = (tmp_path / ".dockerignore").read_text().splitlines()
    assert [line for line in ignored if not line.startswith("#")] == ["*", "!constraints.txt"]


def test_writing_over_a_stack_needs_force(tmp_path: Path, capsys):
    assert main(["stack", "write", str(tmp_path)]) == 0
    (tmp_path / "docker-compose.yml").write_text("mine\n")
    assert main(["stack", "write", str(tmp_path)]) == 2
    assert "give --force" in capsys.readouterr().err
    assert (tmp_path / "docker-compose.yml").read_text() == "mine\n"
    assert main(["stack", "write", "--force", str(tmp_path)]) == 0
    assert (tmp_path / "docker-compose.yml").read_text() != "mine\n"


@pytest.mark.slow
def test_a_wheel_carries_the_license_and_the_stack(tmp_path: Path):
    """Built as pip builds it (isolated), unpacked, and asked to write its stack."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("vpnwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    out = tmp_path / "stack"
    write = subprocess.run(
        [sys.executable, "-c", "import sys, pathlib, vpnwatch.stack as s;"
         " s.write_stack(pathlib.Path(sys.argv[1]))", str(out)],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert write.returncode == 0, write.stderr
    from_wheel = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    from_tree = {str(path): text.encode() for path, text in stack_files()}
    assert from_wheel == from_tree
    assert "deploy/site/.env.example" in from_wheel
