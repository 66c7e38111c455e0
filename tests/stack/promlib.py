"""Helpers that put the stack's files in front of the real programs that will read them.

promtool checks configs and rules, a real Prometheus on loopback answers the dashboard's queries,
and the Compose file is read the way Compose reads it (variables interpolated from an env file).
The live-stack test reuses these, so each is a plain function or context manager with no test
framework inside.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards" / "vpnwatch.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources"
#: A Prometheus opening a month of backfilled blocks takes a while to be ready.
READY_TIMEOUT = 120.0

#: What Grafana puts in for its built-in interval variables, for data scraped every 30 s and a
#: one-hour time range.
GRAFANA_BUILTINS = {
    "__rate_interval": "2m",
    "__interval": "30s",
    "__range": "1h",
    "__range_s": "3600",
}


class PromError(Exception):
    """Prometheus refused a query; the message is Prometheus's own."""


def run(
    command: Sequence[str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion and return its outcome; the caller decides what failure means."""
    return subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def promtool(
    *args: str | Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return run(["promtool", *map(str, args)], cwd=cwd, timeout=timeout)


def backfill(openmetrics: str, tsdb: Path) -> None:
    """Write OpenMetrics text (ending in ``# EOF``) into TSDB blocks under ``tsdb``."""
    source = tsdb.parent / f"{tsdb.name}.om"
    source.write_text(openmetrics, encoding="utf-8")
    try:
        backfill_file(source, tsdb)
    finally:
        source.unlink()


def backfill_file(openmetrics: Path, tsdb: Path, *, max_block_duration: str | None = None) -> None:
    """Turn an OpenMetrics file (a month of a fleet, for the report benchmark) into TSDB blocks.

    promtool cuts 2-hour blocks by default; a fortnight is written some twenty times faster in
    one block (``max_block_duration="336h"``).
    """
    tsdb.mkdir(parents=True, exist_ok=True)
    blocks = [f"--max-block-duration={max_block_duration}"] if max_block_duration else []
    done = promtool(
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        "--quiet",
        *blocks,
        openmetrics,
        tsdb,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill of {openmetrics} failed: {done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus reached over its HTTP API."""

    url: str

    def api(self, path: str, **params: str | float) -> Any:
        """GET an API path; returns ``data`` or raises PromError with Prometheus's message."""
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise PromError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """An instant query's result series; a scalar comes back as one unlabelled series."""
        data = self.api("/api/v1/query", query=expr, time=at)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        result: list[dict[str, Any]] = data["result"]
        return result


@contextlib.contextmanager
def running_prometheus(
    workdir: Path,
    config: str = "global:\n  scrape_interval: 15s\n",
    *,
    tsdb: Path | None = None,
    agent: bool = False,
    extra_args: Sequence[str] = (),
    scheme: str = "http",
    ready: Callable[[str], bool] | None = None,
) -> Iterator[Prometheus]:
    """Start Debian's prometheus on a free loopback port; stop it when the block ends.

    ``config`` is the text of prometheus.yml. In agent mode the server keeps a WAL instead of a
    TSDB and serves no queries, so readiness is all this waits for. A server behind TLS or
    authentication (``--web.config.file`` in ``extra_args``) needs ``scheme`` and a ``ready``
    check that can get in: it is given the base URL and says whether ``/-/ready`` answered.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / ("agent.yml" if agent else "prometheus.yml")
    config_file.write_text(config, encoding="utf-8")
    url = f"{scheme}://127.0.0.1:{free_port()}"
    storage = (
        ["--enable-feature=agent", f"--storage.agent.path={workdir / 'wal'}"]
        if agent
        else [f"--storage.tsdb.path={tsdb or workdir / 'tsdb'}"]
    )
    log = workdir / "prometheus.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config_file}",
                f"--web.listen-address={url.partition('://')[2]}",
                *storage,
                *extra_args,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, server, log, ready or _answers_ready)
        yield Prometheus(url)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextlib.contextmanager
def serving_tsdb(
    tsdb: Path,
    workdir: Path,
    *,
    web_config: Path | None = None,
    ready: Callable[[str], bool] | None = None,
) -> Iterator[str]:
    """A Prometheus that only serves ``tsdb`` (backfilled, in the past); yields its base URL.

    Time retention counts back from the newest block, so a long one keeps a month-long benchmark
    history whole; the server scrapes nothing. With ``web_config`` (TLS, basic auth) it is
    served over https, and ``ready`` must know how to get in.
    """
    extra = ["--storage.tsdb.retention.time=100y", "--log.level=warn"]
    if web_config is not None:
        extra.append(f"--web.config.file={web_config}")
    scheme = "https" if web_config is not None else "http"
    with running_prometheus(
        workdir, "scrape_configs: []\n", tsdb=tsdb, extra_args=extra, scheme=scheme, ready=ready
    ) as server:
        yield server.url


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_ready(
    url: str, server: subprocess.Popen[bytes], log: Path, ready: Callable[[str], bool]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"prometheus exited ({server.returncode}): {log.read_text()[-2000:]}"
            )
        if ready(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready within {READY_TIMEOUT:.0f} s")


def wait_for(check: Any, what: str, timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


# --- the dashboard ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$", re.DOTALL)


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"panel {self.panel!r} query {self.ref}"


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def all_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for item in dashboard.get("panels", []):
        yield item
        yield from item.get("panels", [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(item["title"], target["refId"], target["expr"], bool(target.get("instant")))
        for item in all_panels(dashboard)
        for target in item.get("targets", [])
    ]


def template_variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in dashboard.get("templating", {}).get("list", [])}


def variables_used(text: str) -> set[str]:
    return {next(name for name in match.groups() if name) for match in _VARIABLE.finditer(text)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Put values in for ``$name``, ``${name}`` and ``[[name]]`` as Grafana does.

    Grafana's built-in intervals are known here; any other unknown variable raises KeyError,
    because Grafana would send it to Prometheus as literal text.
    """
    known = {**GRAFANA_BUILTINS, **values}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return known[name]

    return _VARIABLE.sub(replace, expr)


def variable_query(definition: str) -> tuple[str, str]:
    """Turn Grafana's ``label_values(selector, label)`` into (PromQL listing the values, label)."""
    match = _LABEL_VALUES.match(definition.strip())
    if match is None:
        raise ValueError(f"not a label_values() query: {definition!r}")
    selector, label = match.groups()
    if not selector:
        raise ValueError(f"label_values() without a selector scans every series: {definition!r}")
    return f"count by ({label}) ({selector})", label


def provisioned_datasources(directory: Path = DATASOURCES) -> list[dict[str, Any]]:
    import yaml  # noqa: PLC0415 - only the checks that read provisioning need it

    sources: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        sources.extend(document.get("datasources", []))
    return sources


def annotation_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The PromQL of every annotation that asks a data source (not Grafana's built-in one)."""
    return [
        PanelQuery(f"annotation {item['name']}", "", item["expr"], False)
        for item in dashboard.get("annotations", {}).get("list", [])
        if "expr" in item
    ]


def failing_panel_queries(
    server: Prometheus,
    dashboard: Mapping[str, Any],
    values: Mapping[str, str],
    *,
    end: float,
    window: float = 3600.0,
    step: float = 60.0,
    require_data: bool = True,
) -> list[str]:
    """Run every panel query, as Grafana would with ``values``; describe each that fails.

    A query fails when Prometheus rejects it or, with ``require_data``, returns no series.
    """
    problems: list[str] = []
    for item in [*panel_queries(dashboard), *annotation_queries(dashboard)]:
        try:
            expr = substitute(item.expr, values)
            if item.instant:
                result = server.query(expr, at=end)
            else:
                result = server.query_range(expr, end - window, end, step)
        except KeyError as exc:
            problems.append(f"{item}: undefined variable ${exc.args[0]}")
            continue
        except PromError as exc:
            problems.append(f"{item}: {exc}")
            continue
        if require_data and not result:
            problems.append(f"{item}: no data for {expr}")
    return problems


# --- Compose ---------------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<plain>\w+))"
)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads a .env file; blank lines and # comments ignored."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition("=")
            env[key.strip()] = value.strip().strip("'\"")
    return env


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, and ``$$`` for a literal ``$``.

    A required variable that is missing raises KeyError with Compose's message.
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        value = env.get(name)
        op, arg = match["op"], match["arg"] or ""
        empty_counts = op is not None and op.startswith(":")
        missing = value is None or (empty_counts and value == "")
        if op and op.endswith("-") and missing:
            return arg
        if op and op.endswith("?") and missing:
            raise KeyError(f"required variable {name} is missing a value: {arg}")
        return value or ""

    return _INTERPOLATION.sub(replace, text)


# --- a stand-in exporter -------------------------------------------------------------------


@contextlib.contextmanager
def serving_metrics(render: Callable[[], str]) -> Iterator[str]:
    """Serve ``render()`` as OpenMetrics on a loopback port; yields ``host:port`` to scrape."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes are not worth a log line each."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
