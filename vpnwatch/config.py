"""The monitor's configuration: global settings and targets, validated once, at load.

A YAML file holds settings and targets; targets are inline (protocol and fields), ``from:`` a file
users already hold (wg-quick ``.conf``, ``.ovpn``, bridge lines), or every file an ``include:`` glob
matches. Plain files named on the command line join them. Secrets are referenced by path: an inline
target's ``<field>_file`` is read into ``<field>``, so no key or password needs to live in the YAML.
"""

from __future__ import annotations

import dataclasses
import glob
from collections.abc import Callable, Iterable, Sequence
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
from vpnwatch.importers import DEFAULT_OPTIONS, ImportOptions, Skipped, import_file
from vpnwatch.importers.subscription import (
    SUBSCRIPTIONS,
    SubscriptionState,
    is_subscription_url,
)
from vpnwatch.jobs import Job
from vpnwatch.quality import TunnelPlan, overridden
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


class SiteSettings(BaseModel):
    """``settings.sites.<site>``: what differs for the targets whose ``site`` label is this."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: Overrides of ``settings.tunnel`` (thresholds, mostly: a satellite site's RTT is long).
    tunnel: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tunnel")
    @classmethod
    def _overrides_validate(cls, tunnel: dict[str, Any]) -> dict[str, Any]:
        overridden(TunnelPlan(), tunnel)
        return tunnel


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
    #: Tunnel tests of every target that says enough to run them: schedule, size, thresholds.
    #: (Constructed, not validated, as the defaults in quality.py are.)
    tunnel: TunnelPlan = Field(default_factory=TunnelPlan.model_construct)
    #: Per site (the ``site`` label): overrides.
    sites: dict[str, SiteSettings] = Field(default_factory=dict)

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
    #: For subscription URLs (``from: https://…``): how often the list is fetched again.
    refresh: Annotated[Seconds, Field(ge=60, le=MAX_INTERVAL)] = 3600.0


class ConfigFile(BaseModel):
    """The YAML file's shape. Inline targets are validated separately, against their protocol."""

    # Built when first used, not at import: `vpnwatch check FILE` never reads a YAML file.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: `vpnwatch check FILE` keeps the defaults and so never builds the settings' validators.
    settings: Settings = Field(default_factory=Settings.model_construct)
    include: list[str] = Field(default_factory=list)
    targets: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Config:
    settings: Settings
    jobs: tuple[Job, ...]
    #: Entries of imported files that vpnwatch does not probe, with the reason for each.
    skipped: tuple[Skipped, ...] = ()
    #: Each subscription URL's state as this load left it (the fetch's own failures included).
    subscriptions: tuple[SubscriptionState, ...] = ()

    @property
    def refresh(self) -> float | None:
        """How often the monitor must reload for its subscriptions; None when it has none."""
        return min((state.refresh for state in self.subscriptions), default=None)


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
    skipped: list[Skipped] = []

    def imported(file: Path, file_options: ImportOptions) -> Sequence[TargetBase]:
        result = import_file(file, file_options)
        skipped.extend(result.skipped)
        return result.targets

    subscriptions: list[SubscriptionState] = []

    def subscribed(url: str, name: str | None, refresh: float, where: str) -> Sequence[TargetBase]:
        state = SUBSCRIPTIONS.load(url, name, refresh, where)
        subscriptions.append(dataclasses.replace(state))
        assert state.imported is not None  # load() raises when no list was ever read
        skipped.extend(state.imported.skipped)
        return state.imported.targets

    base = path.parent if path is not None else Path.cwd()
    if settings.evidence is not None and not settings.evidence.directory.is_absolute():
        # Like every path in the file, the evidence directory is relative to the file.
        evidence = settings.evidence.model_copy(
            update={"directory": base / settings.evidence.directory}
        )
        settings = settings.model_copy(update={"evidence": evidence})
    for index, entry in enumerate(raw.targets):
        source = f"{path}: targets[{index}]"
        found.extend(_targets_of_entry(entry, base, options, imported, subscribed, source=source))
    for pattern in raw.include:
        matched = sorted(glob.glob(str(base / Path(pattern).expanduser())))
        if not matched:
            raise ConfigError(f"include pattern {pattern!r} matches no file", source=path)
        found.extend(
            (target, match) for match in matched for target in imported(Path(match), options)
        )
    found.extend((target, str(file)) for file in files for target in imported(file, options))
    if not found and skipped:
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        raise ConfigError(f"no targets: every entry was skipped: {skipped[0].describe()}{more}")
    if not found:
        raise ConfigError(
            "no targets: give a config file with targets, or files to probe", source=path
        )
    jobs = tuple(_jobs(found, settings))
    return Config(settings, jobs, tuple(skipped), tuple(subscriptions))


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
    entry: dict[str, Any],
    base: Path,
    options: ImportOptions,
    imported: Callable[[Path, ImportOptions], Sequence[TargetBase]],
    subscribed: Callable[[str, str | None, float, str], Sequence[TargetBase]],
    *,
    source: str,
) -> list[tuple[TargetBase, str]]:
    label = f"{source} ({entry['name']})" if isinstance(entry.get("name"), str) else source
    if "from" in entry:
        url = entry["from"]
        is_url = isinstance(url, str) and is_subscription_url(url)
        try:
            spec = FileTarget.model_validate({**entry, "from": "-"} if is_url else entry)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc), where=label) from None
        overrides = _read_file_fields(spec.model_extra or {}, base, label)
        if is_url:
            # The entry's name names the subscription; its links name their own targets.
            targets = subscribed(url, spec.name, spec.refresh, label)
            spec = spec.model_copy(update={"name": None})
            return [(_override(t, spec, overrides, len(targets), label), label) for t in targets]
        if spec.auth_user_pass is not None:
            options = ImportOptions(auth_user_pass=base / spec.auth_user_pass.expanduser())
        targets = imported(base / spec.from_.expanduser(), options)
        return [(_override(t, spec, overrides, len(targets), label), label) for t in targets]
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


def _read_file_fields(extra: dict[str, Any], base: Path, label: str) -> dict[str, Any]:
    """A ``from:`` entry's overrides with each ``<field>_file`` read into ``<field>``, as inline.

    A CA or password for every target of a file or subscription then needs no YAML of its own.
    """
    fields: dict[str, Any] = {}
    for key, value in extra.items():
        if key.endswith("_file"):
            path = base / Path(str(value)).expanduser()
            fields[key.removesuffix("_file")] = _read_secret(path, label, key)
        else:
            fields[key] = value
    return fields


def _override(
    target: TargetBase, spec: FileTarget, overrides: dict[str, Any], siblings: int, label: str
) -> TargetBase:
    """Apply a ``from:`` entry's overrides, validating the result as if written inline."""
    update: dict[str, Any] = {
        **overrides,
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
        jobs[target.name] = Job(
            target, interval, timeout, source, _tunnel_plan(target, settings, source)
        )
    return list(jobs.values())


def _tunnel_plan(target: TargetBase, settings: Settings, source: str) -> TunnelPlan | None:
    """The target's tunnel plan: settings, then its site's overrides, then its own."""
    if target.tunnel is False or not target.tunnel_ready:
        return None
    site = settings.sites.get(target.labels.get("site", ""))
    layers = [site.tunnel if site is not None else {}]
    if isinstance(target.tunnel, dict):
        layers.append(target.tunnel)
    try:
        return overridden(settings.tunnel, *layers)
    except ValidationError as exc:
        raise ConfigError(
            f"target {target.name!r}: tunnel: {describe_validation_error(exc)}", where=source
        ) from None
