"""The monitor's configuration: global settings and targets, validated once, at load.

A YAML file holds settings and targets; targets are inline (protocol and fields), ``from:`` a file
users already hold (wg-quick ``.conf``, ``.ovpn``, bridge lines), or every file an ``include:`` glob
matches. Plain files named on the command line join them. Secrets are referenced by path: an inline
target's ``<field>_file`` is read into ``<field>``, so no key or password needs to live in the YAML.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vpnwatch.defaults import DEFAULT_LISTEN
from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers import DEFAULT_OPTIONS, ImportOptions, load_file
from vpnwatch.jobs import Job
from vpnwatch.registry import PROTOCOLS, target_model
from vpnwatch.targets.base import MAX_INTERVAL, MAX_TIMEOUT, Seconds, TargetBase


class EvidenceSettings(BaseModel):
    """``settings.evidence`` in a config: where captures go and how much of them to keep."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    directory: Path
    max_files: Annotated[int, Field(ge=1, le=100_000)] = 100
    max_bytes: Annotated[int, Field(ge=4096, le=2**40)] = 50_000_000
    #: Packets kept per probe, and bytes per packet: a probe's handshake needs far less.
    max_packets: Annotated[int, Field(ge=1, le=100_000)] = 1000
    snaplen: Annotated[int, Field(ge=64, le=65535)] = 2048


class Settings(BaseModel):
    """Global settings; every one can be overridden from the command line."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    listen: str = DEFAULT_LISTEN
    interval: Annotated[Seconds, Field(le=MAX_INTERVAL)] = 60.0
    timeout: Annotated[Seconds, Field(le=MAX_TIMEOUT)] = 10.0
    concurrency: Annotated[int, Field(ge=1, le=100_000)] = 256
    jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    #: Keep packet captures of failed probes (needs CAP_NET_RAW and the ``capture`` extra).
    evidence: EvidenceSettings | None = None

    @field_validator("listen")
    @classmethod
    def _listen_parses(cls, listen: str) -> str:
        parse_listen(listen)
        return listen

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> Settings:
        if self.timeout > self.interval:
            raise ValueError(
                f"timeout ({self.timeout:g} s) must not exceed interval ({self.interval:g} s)"
            )
        return self


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (every interface); port 0 picks a free one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address {listen!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


class FileTarget(BaseModel):
    """Targets imported ``from:`` a file, with optional overrides.

    Any other field (``interval``, ``timeout``, ``role``, ``keepalive``, ``data``, …) overrides the
    imported targets' own and is validated by their protocol's model, as if written inline.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)

    from_: Path = Field(alias="from")
    name: str | None = None
    #: Added to the labels the file gives (none, today).
    labels: dict[str, str] = Field(default_factory=dict)
    #: For ``.ovpn`` files: a two-line username/password file, relative to the config.
    auth_user_pass: Path | None = None


class ConfigFile(BaseModel):
    """The YAML file's shape. Inline targets are validated separately, against their protocol."""

    # Built when first used, not at import: `vpnwatch check FILE` never reads a YAML file.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    settings: Settings = Field(default_factory=Settings)
    include: list[str] = Field(default_factory=list)
    targets: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Config:
    settings: Settings
    jobs: tuple[Job, ...]


def load_config(
    path: Path | None = None,
    files: Sequence[Path] = (),
    *,
    overrides: dict[str, Any] | None = None,
    options: ImportOptions = DEFAULT_OPTIONS,
) -> Config:
    """Load and validate everything; any problem raises one ConfigError naming where it is."""
    raw = ConfigFile.model_construct() if path is None else _read_yaml(path)
    settings = raw.settings
    if overrides:
        try:
            settings = Settings.model_validate({**settings.model_dump(), **overrides})
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc), where="command line") from None
    found: list[tuple[TargetBase, str]] = []
    base = path.parent if path is not None else Path.cwd()
    if settings.evidence is not None and not settings.evidence.directory.is_absolute():
        # Like every path in the file, the evidence directory is relative to the file.
        evidence = settings.evidence.model_copy(
            update={"directory": base / settings.evidence.directory}
        )
        settings = settings.model_copy(update={"evidence": evidence})
    for index, entry in enumerate(raw.targets):
        source = f"{path}: targets[{index}]"
        found.extend(_targets_of_entry(entry, base, options, source=source))
    for pattern in raw.include:
        matched = sorted(glob.glob(str(base / Path(pattern).expanduser())))
        if not matched:
            raise ConfigError(f"include pattern {pattern!r} matches no file", source=path)
        found.extend(
            (target, match) for match in matched for target in load_file(Path(match), options)
        )
    found.extend((target, str(file)) for file in files for target in load_file(file, options))
    if not found:
        raise ConfigError(
            "no targets: give a config file with targets, or files to probe", source=path
        )
    return Config(settings, tuple(_jobs(found, settings)))


def _read_yaml(path: Path) -> ConfigFile:
    import yaml  # noqa: PLC0415 - a configuration file needs it, `vpnwatch check FILE` not

    try:
        data = yaml.safe_load(read_text(path))
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read: {exc}", source=path) from None
    except RecursionError:
        raise ConfigError("nested too deeply to be a configuration", source=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(str(problem), source=path, where=where) from None
    try:
        return ConfigFile.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), source=path) from None


def _targets_of_entry(
    entry: dict[str, Any], base: Path, options: ImportOptions, *, source: str
) -> list[tuple[TargetBase, str]]:
    label = f"{source} ({entry['name']})" if isinstance(entry.get("name"), str) else source
    if "from" in entry:
        try:
            spec = FileTarget.model_validate(entry)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc), where=label) from None
        if spec.auth_user_pass is not None:
            options = ImportOptions(auth_user_pass=base / spec.auth_user_pass.expanduser())
        imported = load_file(base / spec.from_.expanduser(), options)
        return [(_override(target, spec, len(imported), label), label) for target in imported]
    model = target_model(str(entry.get("protocol")))
    if model is None:
        known = ", ".join(sorted(PROTOCOLS))
        raise ConfigError(f"protocol: give one of {known}, or from: FILE", where=label)
    inline = dict(entry)
    for key, value in entry.items():
        field = key.removesuffix("_file")
        if field != key and field in model.model_fields:
            del inline[key]
            inline[field] = _read_secret(base / Path(str(value)).expanduser(), label, key)
        elif isinstance(value, str) and _is_path(model, key):
            inline[key] = str(base / Path(value).expanduser())
    try:
        return [(model.model_validate(inline), label)]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), where=label) from None


def _is_path(model: type[TargetBase], field: str) -> bool:
    """Whether ``field`` holds a path, which a config means relative to its own directory."""
    info = model.model_fields.get(field)
    return info is not None and (info.annotation is Path or Path in get_args(info.annotation))


def _read_secret(path: Path, label: str, field: str) -> str:
    try:
        return read_text(path).strip()
    except UnreadableFile as exc:
        raise ConfigError(f"{field}: cannot read {path}: {exc}", where=label) from None


def _override(target: TargetBase, spec: FileTarget, siblings: int, label: str) -> TargetBase:
    """Apply a ``from:`` entry's overrides, validating the result as if written inline."""
    update: dict[str, Any] = {
        **(spec.model_extra or {}),
        "labels": {**target.labels, **spec.labels},
    }
    if spec.name is not None:
        suffix = target.name.partition("/")[2] if siblings > 1 else ""
        update["name"] = f"{spec.name}/{suffix}" if suffix else spec.name
    try:
        return type(target).model_validate({**dict(target), **update})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), where=label) from None


def _jobs(found: Iterable[tuple[TargetBase, str]], settings: Settings) -> list[Job]:
    jobs: dict[str, Job] = {}
    for target, source in found:
        if target.name in jobs:
            raise ConfigError(
                f"duplicate target name {target.name!r} (also from {jobs[target.name].source}); "
                "give one of them a name",
                where=source,
            )
        interval = target.interval or settings.interval
        timeout = target.timeout or min(settings.timeout, interval)
        if timeout > interval:
            raise ConfigError(
                f"target {target.name!r}: timeout ({timeout:g} s) must not exceed interval"
                f" ({interval:g} s)",
                where=source,
            )
        jobs[target.name] = Job(target, interval, timeout, source)
    return list(jobs.values())
