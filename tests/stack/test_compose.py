"""The Compose files, read the way Compose reads them, checked against the Compose schema.

There is no Docker engine here, so the files are interpolated from their .env.example, validated
against the Compose Specification's JSON schema, and checked for what the schema cannot know:
pinned images, dropped capabilities, loopback-only ports, and every config path a container is
told to read existing in the repo at the place the bind mounts put it.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.stack.promlib import REPO, interpolate, read_env_file

SCHEMA = Path(__file__).with_name("schema") / "compose-spec.json"
CENTRAL = REPO / "docker-compose.yml"
SITE = REPO / "deploy" / "site" / "docker-compose.yml"
#: What an operator must add to .env.example before `docker compose up` (the file leaves the
#: Grafana password empty on purpose).
OPERATOR_INPUT = {CENTRAL: {"GRAFANA_ADMIN_PASSWORD": "not-a-real-password"}, SITE: {}}


def env_example(compose: Path) -> dict[str, str]:
    return read_env_file(compose.with_name(".env.example"))


def load(compose: Path, env: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(interpolate(compose.read_text(), env))
    return document


def schema_errors(document: dict[str, Any]) -> list[str]:
    # Imported here so that, where the package is missing, these tests fail with a clear message
    # instead of stopping the collection of the whole suite.
    try:
        import jsonschema  # type: ignore[import-untyped]  # noqa: PLC0415
    except ModuleNotFoundError:
        pytest.fail("the jsonschema package is missing: it belongs in the dev extra")
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.fixture(params=[CENTRAL, SITE], ids=["central", "site"])
def compose(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    path: Path = request.param
    return path, load(path, {**env_example(path), **OPERATOR_INPUT[path]})


def test_valid_against_the_compose_specification(compose: tuple[Path, dict[str, Any]]) -> None:
    _, document = compose
    assert schema_errors(document) == []


def test_the_schema_check_catches_a_misspelt_key(compose: tuple[Path, dict[str, Any]]) -> None:
    _, document = compose
    service = next(iter(document["services"].values()))
    service["volume"] = service.pop("volumes")
    service["restart"] = 3
    errors = schema_errors(document)
    assert "services/vpnwatch: 'volume' does not match any of the regexes: '^x-'" in errors
    assert "services/vpnwatch/restart: 3 is not of type 'string'" in errors


def test_every_variable_has_a_default_or_is_in_env_example() -> None:
    for path in (CENTRAL, SITE):
        # Interpolating with only .env.example must fail on nothing but what operators must set.
        load(path, {**env_example(path), **OPERATOR_INPUT[path]})
        for variable in OPERATOR_INPUT[path]:
            with pytest.raises(KeyError, match=f"{variable}.*\\.env"):
                load(path, env_example(path))


def test_images_are_pinned_and_services_hardened(compose: tuple[Path, dict[str, Any]]) -> None:
    _, document = compose
    for name, service in document["services"].items():
        if "build" not in service:
            image, _, tag = service["image"].rpartition(":")
            pinned = tag[:1].isdigit() or (tag[:1] == "v" and tag[1:2].isdigit())
            assert image and pinned, f"{name}: pin {service['image']} to a version"
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_vpnwatch_gets_config_and_secrets_read_only(compose: tuple[Path, dict[str, Any]]) -> None:
    _, document = compose
    mounts = {m.split(":")[1]: m for m in document["services"]["vpnwatch"]["volumes"]}
    assert mounts["/etc/vpnwatch"].endswith(":ro")
    assert mounts["/run/secrets/vpnwatch"].endswith(":ro")
    assert document["services"]["vpnwatch"]["read_only"] is True


def host_path(compose: Path, service: dict[str, Any], inside: str) -> Path:
    """Where a path inside the container comes from on the host, through its bind mounts."""
    wanted = PurePosixPath(inside)
    volumes: list[str] = service.get("volumes", [])
    for volume in volumes:
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")) and wanted.is_relative_to(target):
            return (compose.parent / source / wanted.relative_to(target)).resolve()
    raise AssertionError(f"{inside} is not bind-mounted")


def test_central_services_find_their_files_in_the_repo() -> None:
    services = load(CENTRAL, {**env_example(CENTRAL), **OPERATOR_INPUT[CENTRAL]})["services"]
    for name in ("prometheus", "alertmanager"):
        (flag,) = [a for a in services[name]["command"] if a.startswith("--config.file=")]
        assert host_path(CENTRAL, services[name], flag.partition("=")[2]).is_file(), name
    grafana = services["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(CENTRAL, grafana, home) == REPO / "dashboards" / "vpnwatch.json"
    provisioning = host_path(CENTRAL, grafana, "/etc/grafana/provisioning")
    provider = yaml.safe_load((provisioning / "dashboards" / "vpnwatch.yml").read_text())
    dashboards = host_path(CENTRAL, grafana, provider["providers"][0]["options"]["path"])
    assert (dashboards / "vpnwatch.json").is_file()
    assert (REPO / services["vpnwatch"]["build"] / "Dockerfile").is_file()


def test_the_site_builds_from_the_repo_and_writes_its_agent_config() -> None:
    document = load(SITE, env_example(SITE))
    assert (SITE.parent / document["services"]["vpnwatch"]["build"] / "Dockerfile").is_file()
    agent = yaml.safe_load(document["configs"]["agent"]["content"])
    labels = agent["global"]["external_labels"]
    assert labels["vantage"] == env_example(SITE)["VANTAGE"]
    assert agent["remote_write"][0]["url"] == env_example(SITE)["REMOTE_WRITE_URL"]
    command = document["services"]["prometheus-agent"]["command"]
    assert "--enable-feature=agent" in command


def test_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert any(line.startswith("USER vpnwatch") for line in instructions)
    assert any("HEALTHCHECK" in line for line in instructions)
    assert any("/healthz" in line for line in instructions)
    froms = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert all(ref.startswith("${") or ":" in ref for ref in froms)
    assert any(line.startswith("ARG PYTHON_IMAGE=python:3.") for line in instructions)
