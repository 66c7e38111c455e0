"""Prometheus exposition, written as text by vpnwatch itself rather than through client objects.

A fleet of thousands of targets exports tens of samples each; building prometheus_client's metric
objects for all of them on every scrape cost more CPU than the probes did (1.4 s per 1,000 targets,
on the event loop). Here a target's sample lines are plain strings, written once after each of its
results and reused by every scrape until the next: a scrape is then a join of cached strings.

The sample lines are the same in the Prometheus text format (0.0.4) and in OpenMetrics 1.0; only
the family headers differ, and OpenMetrics ends with ``# EOF``. Both are served, by the scrape's
``Accept`` header, as prometheus_client does.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import accumulate

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


class Kind(Enum):
    """A family's type; the value is its OpenMetrics name."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    INFO = "info"
    STATESET = "stateset"


class Format(Enum):
    """The two exposition formats Prometheus scrapes; the value is the Content-Type."""

    TEXT = "text/plain; version=0.0.4; charset=utf-8"
    OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    @classmethod
    def accepted(cls, accept: str) -> Format:
        """What a scrape's ``Accept`` header asks for; Prometheus prefers OpenMetrics."""
        return cls.OPENMETRICS if "application/openmetrics-text" in accept else cls.TEXT


GZIP_LEVEL = 1

#: What a family's samples are called after its name, by kind (OpenMetrics names families bare).
_SUFFIX = {Kind.COUNTER: "_total", Kind.INFO: "_info"}


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family's name (without ``_total``/``_info``), kind, help and unit."""

    name: str
    kind: Kind
    help: str
    unit: str = ""

    @property
    def sample(self) -> str:
        """The name of its samples (counters ``_total``, infos ``_info``; histograms add more)."""
        return self.name + _SUFFIX.get(self.kind, "")

    def header(self, form: Format) -> str:
        """``# HELP`` and ``# TYPE`` (and OpenMetrics' ``# UNIT``) lines."""
        help_text = self.help.replace("\\", r"\\").replace("\n", r"\n")
        if form is Format.OPENMETRICS:
            unit = f"# UNIT {self.name} {self.unit}\n" if self.unit else ""
            return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind.value}\n{unit}"
        kind = self.kind if self.kind in (Kind.COUNTER, Kind.HISTOGRAM) else Kind.GAUGE
        return f"# HELP {self.sample} {help_text}\n# TYPE {self.sample} {kind.value}\n"


def label_value(value: str) -> str:
    """A label value escaped for the exposition (backslash, double quote, newline)."""
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def labels(names: Iterable[str], values: Iterable[str]) -> str:
    """``a="x",b="y"``: the inside of a sample's braces, to be reused for every sample."""
    return ",".join(f'{n}="{label_value(v)}"' for n, v in zip(names, values, strict=True))


def number(value: float) -> str:
    """A sample value as both formats write it (a bool as 1 or 0)."""
    if isinstance(value, int):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def sample(name: str, inside: str, value: float) -> str:
    """One sample line; ``inside`` is :func:`labels`' output, or empty."""
    return f"{name}{{{inside}}} {number(value)}\n" if inside else f"{name} {number(value)}\n"


def histogram(
    name: str, inside: str, bounds: Sequence[str], counts: Iterable[int], total: float
) -> str:
    """A histogram's ``_bucket`` (cumulative, ending with ``+Inf``), ``_count`` and ``_sum``.

    Written by one ``%`` of a template made once per family and bounds: a target's histograms
    are most of its lines, and building each line apart made their writing most of a scrape.
    """
    cumulative = list(accumulate(counts))
    if len(cumulative) != len(bounds):
        raise ValueError(f"{name}: {len(bounds)} bounds but {len(cumulative)} counts")
    if not inside:
        return _histogram_template(name, tuple(bounds), False) % (
            *cumulative,
            cumulative[-1],
            number(total),
        )
    values: list[object] = [inside] * (2 * len(cumulative) + 4)
    values[1 : 2 * len(cumulative) : 2] = cumulative
    values[-3], values[-1] = cumulative[-1], number(total)
    return _histogram_template(name, tuple(bounds), True) % tuple(values)


@functools.cache
def _histogram_template(name: str, bounds: tuple[str, ...], labelled: bool) -> str:
    """The ``%`` template of :func:`histogram`: labels (``%s``) and counts (``%d``) left open."""
    if not labelled:
        buckets = "".join(f'{name}_bucket{{le="{bound}"}} %d\n' for bound in bounds)
        return f"{buckets}{name}_count %d\n{name}_sum %s\n"
    buckets = "".join(f'{name}_bucket{{%s,le="{bound}"}} %d\n' for bound in bounds)
    return f"{buckets}{name}_count{{%s}} %d\n{name}_sum{{%s}} %s\n"


def process_metrics(registry: CollectorRegistry, form: Format) -> str:
    """prometheus_client's own rendering of a small registry (the process collector)."""
    encoder, _ = choose_encoder(Format.OPENMETRICS.value if form is Format.OPENMETRICS else "")
    text: str = encoder(registry).decode()
    return text.removesuffix("# EOF\n")


async def exposition_response(request: web.Request, parts: list[str], form: Format) -> web.Response:
    """The answer to a scrape: its text joined, encoded and gzipped off the event loop.

    Off the loop because a fleet's text is megabytes: each copy of it is milliseconds the probes
    would wait. Gzip when the scraper accepts it, at level 1: on an exposition of 500 targets
    (4 MB) it costs 9 ms of CPU against 33 ms at zlib's default level, for a body 20 % larger;
    scrapes come every few seconds, bytes are cheap on the monitor's own link.
    """
    if form is Format.OPENMETRICS:
        parts = [*parts, "# EOF\n"]
    headers = {"Content-Type": form.value}
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = await asyncio.get_running_loop().run_in_executor(None, _body, parts, gzipped)
    return web.Response(body=body, headers=headers)


def _body(parts: list[str], gzipped: bool) -> bytes:
    body = "".join(parts).encode()
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if gzipped else body
