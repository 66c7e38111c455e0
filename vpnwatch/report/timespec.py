"""Times and durations as people type them on the command line, and as reports print them.

Accepted times (``--from``/``--to``):

- RFC 3339: ``2024-03-10T14:00:00Z``, ``2024-03-10T19:00:00+05:00`` (a space may replace the ``T``);
- a date and time without offset, or a bare date (``2024-03-10``): read in the report's zone
  (``--tz``), because that is the clock the reader of the report lives by;
- ``now``, or ``now`` minus a duration: ``now-24h``, ``now-7d``, ``now-1h30m``.

Durations are Prometheus-style: a sequence of ``<integer><unit>`` with units ``s m h d w``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d{1,12}[wdhms])+")
_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_RELATIVE = re.compile(r"now(?:-(?P<ago>.+))?")
#: The longest duration accepted: a report reaches back at most a century.
MAX_DURATION = 100 * 366 * 86_400


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``5m`` or ``1h30m``; raises ValueError naming the problem."""
    cleaned = text.strip()
    if not _DURATION.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h30m or 7d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    if seconds > MAX_DURATION:
        raise ValueError(f"{text!r} is a duration longer than 100 years")
    return float(seconds)


def parse_zone(name: str) -> tzinfo:
    """An IANA zone such as ``Asia/Karachi``, or ``UTC``."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone (e.g. UTC, Asia/Karachi)") from None


def parse_time(text: str, *, now: float, zone: tzinfo) -> float:
    """Unix seconds for a ``--from``/``--to`` value; ``now`` is passed in so tests can fix it."""
    cleaned = text.strip()
    relative = _RELATIVE.fullmatch(cleaned)
    if relative:
        ago = relative.group("ago")
        return now - parse_duration(ago) if ago else now
    try:
        parsed = datetime.fromisoformat(cleaned.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use RFC 3339 (2024-03-10T14:00:00Z), a date, or now-24h"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


#: The unit symbols of :func:`format_duration`; a translated page passes its own.
DURATION_UNITS = {"d": "d", "h": "h", "min": "min", "s": "s"}


def format_duration(seconds: float, units: Mapping[str, str] = DURATION_UNITS) -> str:
    """``3 h 12 min``: whole minutes, largest units first, for sentences and tables."""
    if seconds < 60:
        return f"{round(seconds)} {units['s']}"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{days} {units['d']}" if days else "",
        f"{hours} {units['h']}" if hours else "",
        f"{minutes} {units['min']}",
    ]
    if minutes == 0 and (days or hours):
        parts.pop()
    return " ".join(part for part in parts if part)


def format_step(seconds: float) -> str:
    """A step or duration in Prometheus notation (``5m``, ``1h30m``), as queries spell it."""
    remaining = round(seconds)
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_local(timestamp: float, zone: tzinfo) -> str:
    """``2024-03-10 19:00 PKT``: minute precision in the report's zone."""
    return datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M %Z")


def format_local_iso(timestamp: float, zone: tzinfo) -> str:
    """``2024-03-10T19:00:00+05:00``: the local time with its offset, for CSV and JSON."""
    return datetime.fromtimestamp(timestamp, zone).isoformat(timespec="seconds")


def format_utc(timestamp: float) -> str:
    """``2024-03-10 14:00 UTC``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_rfc3339(timestamp: float) -> str:
    """``2024-03-10T14:00:00Z``: for CSV and JSON, where scripts parse it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
