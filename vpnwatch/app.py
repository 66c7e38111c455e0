"""The monitor's HTTP face: /metrics, /healthz, /api/targets and, when enabled, POST /-/reload
and GET /probe.

Everything but the reload endpoint is read-only. Reload is off unless asked for, as Prometheus does
with ``--web.enable-lifecycle``: anyone who can reach the port could otherwise make the monitor
re-read files; /probe likewise (``--web.enable-probe``). A web config file adds basic
authentication to every path but /healthz (TLS is the listener's, see monitor.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from vpnwatch.exposition import Format, exposition_response, process_metrics
from vpnwatch.metrics import Metrics, TargetStats
from vpnwatch.ondemand import OnDemand
from vpnwatch.records import result_record
from vpnwatch.webconfig import WebConfig

#: Reloads the configuration; returns None on success, else the one-line reason it failed.
Reload = Callable[[], Awaitable[str | None]]


def build_app(
    metrics: Metrics,
    reload: Reload | None,
    *,
    web_config: WebConfig | None = None,
    on_demand: OnDemand | None = None,
) -> web.Application:
    """``reload`` and ``on_demand`` are None when their endpoints are disabled."""
    middlewares = [web_config.middleware()] if web_config is not None else []
    app = web.Application(middlewares=middlewares)
    app.router.add_get("/metrics", _metrics_handler(metrics))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/api/targets", _targets_handler(metrics))
    app.router.add_get("/", _index)
    if reload is not None:
        app.router.add_post("/-/reload", _reload_handler(reload))
    if on_demand is not None:
        app.router.add_get("/probe", on_demand.handle)
    return app


def _metrics_handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    process = CollectorRegistry()
    process.register(ProcessCollector(registry=None))

    async def handler(request: web.Request) -> web.Response:
        form = Format.accepted(request.headers.get("Accept", ""))
        parts = await metrics.sliced_exposition(form)
        parts.append(process_metrics(process, form))
        return await exposition_response(request, parts, form)

    return handler


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _index(_: web.Request) -> web.Response:
    return web.Response(
        text="vpnwatch: see /metrics for Prometheus, /api/targets for JSON, /healthz\n"
    )


def _targets_handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response([_target_json(stats) for stats in metrics.targets.values()])

    return handler


def _target_json(stats: TargetStats) -> dict[str, Any]:
    target = stats.job.target
    return {
        "target": target.name,
        "protocol": target.protocol,
        "endpoint": target.endpoint,
        "transport": target.transport,
        "role": target.role,
        "labels": target.labels,
        "interval_seconds": stats.job.interval,
        "timeout_seconds": stats.job.timeout,
        "probes": stats.probes,
        "success_ratio": stats.success_ratio,
        "success_ratio_over": len(stats.recent),
        "last_success_timestamp_seconds": stats.last_success,
        "last_result": result_record(target, stats.last) if stats.last else None,
    }


def _reload_handler(reload: Reload) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        error = await reload()
        if error is None:
            return web.Response(text="reloaded\n")
        return web.Response(
            status=500, text=f"reload failed, the configuration in use stays: {error}\n"
        )

    return handler
