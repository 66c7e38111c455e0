"""The long-running monitor: scheduler, metrics, web server and reload, wired together."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from vpnwatch.app import build_app
from vpnwatch.config import Config, parse_listen
from vpnwatch.errors import ConfigError
from vpnwatch.evidence import EvidenceRecorder
from vpnwatch.jobs import Job
from vpnwatch.limits import probe_capacity
from vpnwatch.metrics import Metrics
from vpnwatch.ondemand import OnDemand
from vpnwatch.probes import Probe
from vpnwatch.result import LocalError, LocalReason, Result
from vpnwatch.scheduler import Scheduler
from vpnwatch.targets.base import format_endpoint
from vpnwatch.webconfig import WebConfig

log = logging.getLogger("vpnwatch")
#: How often a configuration without subscriptions looks again whether a reload added one.
SUBSCRIPTION_POLL = 300.0


class Monitor:
    """Probes every job of a configuration and serves what it finds, until cancelled."""

    def __init__(
        self,
        load: Callable[[], Config],
        probes: Mapping[str, Probe],
        *,
        enable_lifecycle: bool = False,
        enable_probe: bool = False,
        web_config: WebConfig | None = None,
    ) -> None:
        self._load = load
        self._config = load()
        self._enable_lifecycle = enable_lifecycle
        self._enable_probe = enable_probe
        self._web_config = web_config
        self.metrics = Metrics()
        self.metrics.configure(self._config.jobs)
        self.metrics.subscriptions(self._config.subscriptions)
        self._failing_since: dict[str, float] = {}
        self._errors_logged: set[str] = set()
        self._local_errors_logged: set[LocalReason] = set()
        self._background: set[asyncio.Task[object]] = set()
        if self._config.settings.evidence is not None:
            recorder = EvidenceRecorder(self._config.settings.evidence)
            probes = {name: recorder.capturing(probe) for name, probe in probes.items()}
        self._probes = probes
        self._scheduler = Scheduler(
            probes,
            self._on_result,
            self._on_error,
            on_local_error=self._on_local_error,
            on_start=self.metrics.started,
            concurrency=probe_capacity(self._config.settings.concurrency),
            jitter=self._config.settings.jitter,
        )
        self.address: tuple[str, int] | None = None  # where it listens, once running

    async def run(self) -> None:
        host, port = parse_listen(self._config.settings.listen)
        reload = self.reload if self._enable_lifecycle else None
        on_demand = (
            OnDemand(lambda: {job.name: job for job in self._config.jobs}, self._probes)
            if self._enable_probe
            else None
        )
        app = build_app(self.metrics, reload, web_config=self._web_config, on_demand=on_demand)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tls = self._web_config.ssl_context if self._web_config is not None else None
        try:
            site = web.TCPSite(runner, host or None, port, ssl_context=tls)
            try:
                await site.start()
            except OSError as exc:
                # asyncio's message repeats the address; the errno's name is the news
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                listen = self._config.settings.listen
                raise ConfigError(f"cannot listen on {listen}: {reason}") from None
            self.address = tuple(runner.addresses[0][:2])  # the real port when asked for port 0
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._reload_in_background)
            # Logged once SIGHUP is handled: whoever waits for this line may send it safely.
            log.info(
                "probing %d targets; metrics at %s://%s/metrics",
                len(self._config.jobs),
                "https" if tls is not None else "http",
                format_endpoint(*self.address),
            )
            refresh = loop.create_task(self._refresh_subscriptions(), name="subscriptions")
            loop.call_soon(_settle_heap)  # once the scheduler below has made its tasks
            try:
                await self._scheduler.run(self._config.jobs)
            finally:
                refresh.cancel()
                loop.remove_signal_handler(signal.SIGHUP)
        finally:
            await runner.cleanup()

    def _reload_in_background(self) -> None:
        """SIGHUP: reload in a task kept until it ends (the loop holds tasks only weakly)."""
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_subscriptions(self) -> None:
        """Reload when the configuration's subscriptions are due: the reload fetches them.

        A reload keeps unchanged targets' schedules and counters, so a list that did not change
        (or could not be fetched, and is kept) changes nothing the scheduler sees.
        """
        while True:
            await asyncio.sleep(self._config.refresh or SUBSCRIPTION_POLL)
            if self._config.subscriptions:
                await self.reload()

    async def reload(self) -> str | None:
        """Re-read the configuration off the event loop; on error keep the running one, say why."""
        try:
            config = await asyncio.to_thread(self._load)
        except ConfigError as exc:
            log.error("reload failed, keeping the previous configuration: %s", exc)
            self.metrics.reloaded(ok=False)
            return str(exc)
        for setting in ("listen", "evidence"):
            if getattr(config.settings, setting) != getattr(self._config.settings, setting):
                log.warning("settings.%s changes only on restart", setting)
        self._config = config
        self.metrics.configure(config.jobs)
        self.metrics.subscriptions(config.subscriptions)
        for state in config.subscriptions:
            if not state.ok:
                log.warning("%s", state.describe())
        self._scheduler.update(
            config.jobs,
            concurrency=probe_capacity(config.settings.concurrency),
            jitter=config.settings.jitter,
        )
        names = {job.name for job in config.jobs}
        self._failing_since = {k: v for k, v in self._failing_since.items() if k in names}
        self.metrics.reloaded(ok=True)
        _settle_heap()
        log.info("configuration reloaded: %d targets", len(config.jobs))
        return None

    def _on_result(self, job: Job, result: Result) -> None:
        """Hand the result to every sink; one sink's bug costs neither the others nor the loop."""
        stats = self.metrics.targets.get(job.name)
        if result.tunnel is not None:
            previous = stats.tunnel.last if stats is not None else None
            log_it = lambda: _log_tunnel_transition(job, previous, result)  # noqa: E731
        else:
            previous = stats.last if stats is not None else None
            log_it = lambda: self._log_transition(job, previous, result)  # noqa: E731
        sinks: tuple[Callable[[], None], ...] = (
            lambda: self.metrics.observe(job, result),
            log_it,
        )
        for sink in sinks:
            try:
                sink()
            except Exception as exc:
                self._on_error(job, exc)

    def _log_transition(self, job: Job, previous: Result | None, result: Result) -> None:
        """One line per change of state, never one per probe."""
        extra = {"target": job.name, "protocol": job.target.protocol}
        if not result.ok:
            if previous is None or previous.ok:
                self._failing_since[job.name] = time.monotonic()
                was = "first probe" if previous is None else "ok → failing"
                log.warning(
                    "target %s %s: %s at %s%s",
                    job.name,
                    was,
                    result.failure,
                    result.stage or "start",
                    f" ({result.detail})" if result.detail else "",
                    extra={**extra, "failure": str(result.failure), "stage": result.stage},
                )
        elif previous is None:
            log.info("target %s first probe: ok", job.name, extra=extra)
        elif not previous.ok:
            down = time.monotonic() - self._failing_since.pop(job.name, time.monotonic())
            log.info(
                "target %s failing → ok after %s",
                job.name,
                _human_duration(down),
                extra={**extra, "down_seconds": round(down, 3)},
            )

    def _on_local_error(self, job: Job, error: LocalError) -> None:
        """This host's trouble: counted, and logged once per cause, never blamed on the target."""
        self.metrics.local_error(error.reason)
        if error.reason not in self._local_errors_logged:
            self._local_errors_logged.add(error.reason)
            log.error(
                "probe of %s could not run here (%s): %s; vpnwatch's own problem, not the "
                "endpoint's (counted in vpnwatch_probe_errors_total, logged once per cause)",
                job.name,
                error.reason,
                error.detail,
                extra={"target": job.name, "reason": str(error.reason)},
            )

    def _on_error(self, job: Job, exc: BaseException) -> None:
        """A bug: the first one per target gets a traceback, every one is counted."""
        self.metrics.local_error(LocalReason.INTERNAL)
        if job.name not in self._errors_logged:
            self._errors_logged.add(job.name)
            log.error("probe of %s raised (a bug in vpnwatch)", job.name, exc_info=exc)
        else:
            log.debug("probe of %s raised again: %r", job.name, exc)


def _tunnel_state(result: Result) -> str:
    if not result.ok:
        return f"failing ({result.failure} at {result.stage})"
    if result.degraded:
        return f"degraded ({', '.join(result.degraded)})"
    return "ok"


def _log_tunnel_transition(job: Job, previous: Result | None, result: Result) -> None:
    """One line when a target's tunnel changes state (ok, degraded and why, failing)."""
    state = _tunnel_state(result)
    if previous is not None and _tunnel_state(previous) == state:
        return
    was = "first tunnel test" if previous is None else f"tunnel {_tunnel_state(previous)} →"
    level = logging.INFO if state == "ok" else logging.WARNING
    log.log(
        level,
        "target %s %s %s: %s",
        job.name,
        was,
        state,
        result.detail,
        extra={"target": job.name, "protocol": job.target.protocol, "tunnel": state},
    )


def _human_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{seconds:.1f} s"


def _settle_heap() -> None:
    """Take what a configuration built out of the cyclic garbage collector's full collections.

    A fleet's targets, jobs, schedules and per-target state are tens of thousands of objects that
    live as long as the configuration. Every full collection walked all of them on the event loop:
    110-200 ms at 2,000 targets, and the probes due meanwhile started that late. Frozen, they are
    skipped (20-40 ms). Unfrozen first, so that what the previous configuration left is collected:
    that full collection is the one stall this costs, once per load.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
