"""``/probe?target=NAME``: one probe of a configured target, now, answered with its metrics.

This is the convention of blackbox_exporter's ``/probe``, so Prometheus can drive the schedule
(one scrape job per target, or relabelling) and an operator can check a target by hand. It is
off unless ``--web.enable-probe`` is given: anyone who can reach the port could otherwise make
the monitor send handshakes. Only configured targets can be probed, never an address from the
request, and at most :data:`LIMIT` on-demand probes run at once; more are refused with 503.
On-demand results do not touch the scheduled probes' counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from vpnwatch.exposition import Format, exposition_response
from vpnwatch.jobs import Job
from vpnwatch.metrics import Metrics
from vpnwatch.probes import OVERRUN_GRACE, Probe, run_probe
from vpnwatch.result import LocalError

log = logging.getLogger("vpnwatch")

#: On-demand probes running at once; each holds sockets and, for OpenVPN, a TLS session.
LIMIT = 8
#: Prometheus sends the scrape timeout in this header; the probe must end before it.
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


class OnDemand:
    """Answers /probe from the jobs configured now and the probes the scheduler uses."""

    def __init__(
        self, jobs: Callable[[], Mapping[str, Job]], probes: Mapping[str, Probe], limit: int = LIMIT
    ) -> None:
        self._jobs = jobs
        self._probes = probes
        self._limit = limit
        self._running = 0

    async def handle(self, request: web.Request) -> web.Response:
        name = request.query.get("target", "")
        if not name:
            return _plain(400, "give the target to probe: /probe?target=NAME")
        job = self._jobs().get(name)
        if job is None:
            return _plain(400, f"no configured target is named {name!r}")
        if self._running >= self._limit:
            return _plain(503, f"{self._limit} on-demand probes are running already; retry later")
        self._running += 1
        try:
            metrics = Metrics()
            metrics.configure([job])
            timeout = _timeout(job.timeout, request.headers.get(SCRAPE_TIMEOUT_HEADER))
            try:
                result = await run_probe(self._probes[job.target.protocol], job.target, timeout)
            except LocalError as exc:  # this host's trouble: no verdict on the target
                return _plain(503, f"{name!r} could not be probed here ({exc.reason}); retry later")
            except Exception:
                log.exception("on-demand probe of %s raised (a bug in vpnwatch)", name)
                return _plain(500, f"the probe of {name!r} raised inside vpnwatch; see its log")
            metrics.observe(job, result)
        finally:
            self._running -= 1
        form = Format.accepted(request.headers.get("Accept", ""))
        return await exposition_response(request, [metrics.target_exposition(form)], form)


def _timeout(configured: float, scrape_timeout: str | None) -> float:
    """The target's timeout, shortened so the answer arrives within Prometheus's scrape timeout."""
    try:
        budget = float(scrape_timeout) - OVERRUN_GRACE if scrape_timeout else configured
    except ValueError:
        budget = configured
    return max(min(configured, budget), 0.1)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n")
