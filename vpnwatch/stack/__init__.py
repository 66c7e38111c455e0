"""The deployment stack shipped inside the package, so a pip user needs no clone of the repo.

The files are the repo's own (``files/`` holds links to them, which the wheel build follows):
the Compose files, Prometheus' configuration and rules with their tests, Alertmanager's
configuration, Grafana's provisioning and dashboard, the Dockerfile and its constraints.
``vpnwatch stack write DIR`` puts them out. Written out, the Compose files build the image from
the released package at this version instead of from a source tree, and the build context lets
nothing but constraints.txt in (a stack directory holds configuration and keys).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from vpnwatch import __version__
from vpnwatch.errors import ConfigError

#: Names that a wheel cannot carry as they are (a leading dot is skipped by package data globs).
RENAMED = {"env.example": ".env.example"}
#: Not part of a deployment: the dashboard's generator.
SKIPPED = frozenset({"dashboards/generate.py"})
#: The build context of a written stack: the constraints file and nothing else.
DOCKERIGNORE = """\
# The image installs vpnwatch from its package index with the versions in constraints.txt; keep
# everything else, above all configuration and keys, out of the build context.
*
!constraints.txt
"""
_BUILD = re.compile(r"^(?P<indent>[ ]+)build: (?P<context>\S+)$", re.MULTILINE)


def stack_files() -> Iterator[tuple[PurePosixPath, str]]:
    """(path in the stack directory, text) of every file of the stack, as it is written out."""
    root = files(__package__) / "files"
    for relative, entry in sorted(_walk(root, PurePosixPath()), key=lambda item: str(item[0])):
        if str(relative) in SKIPPED or "__pycache__" in relative.parts:
            continue
        text = entry.read_text(encoding="utf-8")
        if relative.name == "docker-compose.yml":
            text = _from_package(text)
        yield PurePosixPath(RENAMED.get(str(relative), str(relative))), text
    yield PurePosixPath(".dockerignore"), DOCKERIGNORE


def write_stack(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the stack into ``directory``; refuses to overwrite a file unless ``force``."""
    stack = list(stack_files())
    if not stack:
        raise ConfigError("this installation of vpnwatch carries no stack files")
    targets = [(directory / relative, text) for relative, text in stack]
    if not force:
        existing = [path for path, _ in targets if path.exists()]
        if existing:
            raise ConfigError(
                f"{existing[0]} exists ({len(existing)} of the stack's files do); "
                "give --force to overwrite them"
            )
    for path, text in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return [path for path, _ in targets]


def _walk(
    entry: Traversable, relative: PurePosixPath
) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for child in entry.iterdir():
        if child.is_dir():
            yield from _walk(child, relative / child.name)
        else:
            yield relative / child.name, child


def _from_package(compose: str) -> str:
    """Build from the released package: the same Dockerfile, another requirement."""

    def build(match: re.Match[str]) -> str:
        indent = match["indent"]
        return (
            f"{indent}build:\n"
            f"{indent}  context: {match['context']}\n"
            f"{indent}  args:\n"
            f'{indent}    VPNWATCH_REQUIREMENT: "vpnwatch=={__version__}"'
        )

    return _BUILD.sub(build, compose)
