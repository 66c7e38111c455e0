"""The scripted fortnight a status page must tell back: 2024-03-01 to 2024-03-14 12:00 UTC.

Probes every 120 s at two sites, each with WireGuard, OpenVPN, obfs4 and two control probes:

- karachi-1 WireGuard blocked 2024-03-04 02:00-05:00 UTC (failing), and blocked again from
  2024-03-14 09:00 UTC until the page is made at 12:00 (failing now);
- karachi-1 OpenVPN at 40 % 2024-03-07 08:00-13:00 UTC (degraded);
- lahore-2 offline 2024-03-10 20:00-20:40 UTC: its control probes fail too (offline);
- lahore-2 obfs4 first probed on 2024-03-03: no data before (grey bars).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.report.openmetrics import Outcome, Target, write_openmetrics

START = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())
NOW = int(datetime(2024, 3, 14, 12, tzinfo=UTC).timestamp())
AT = "2024-03-14T12:00:00Z"
DAYS = 14
SCRAPE_INTERVAL = 120
KARACHI, LAHORE = "karachi-1", "lahore-2"
HANDSHAKE_SECONDS = {"wireguard": 0.04, "openvpn": 0.35, "obfs4": 0.25}


def at(day: int, hours: int, minutes: int = 0) -> int:
    return int(datetime(2024, 3, day, hours, minutes, tzinfo=UTC).timestamp())


def targets() -> list[Target]:
    found = []
    for site in (KARACHI, LAHORE):
        found += [
            Target(site, f"wg-{site}", "wireguard"),
            Target(site, f"ovpn-{site}", "openvpn", transport="tcp"),
            Target(site, f"obfs4-{site}", "obfs4", transport="tcp"),
            Target(site, f"ctl-tcp-{site}", "tcp", role="control", transport="tcp"),
            Target(site, f"ctl-dns-{site}", "dns", role="control"),
        ]
    return found


def decide(target: Target, t: float) -> Outcome:
    site, protocol = target.site, target.protocol
    if site == LAHORE and at(10, 20) <= t < at(10, 20, 40):
        return ("unreachable", "connect")
    blocked = at(4, 2) <= t < at(4, 5) or t >= at(14, 9)
    if site == KARACHI and protocol == "wireguard" and blocked:
        return ("timeout", "handshake")
    throttled = at(7, 8) <= t < at(7, 13) and (int(t - at(7, 8)) // SCRAPE_INTERVAL) % 5 in (
        1,
        3,
        4,
    )
    if site == KARACHI and protocol == "openvpn" and throttled:  # 2 of every 5 succeed: 40 %
        return ("reset", "tls")
    return HANDSHAKE_SECONDS.get(protocol, 0.02)


def write(directory: Path) -> list[Path]:
    """The history as OpenMetrics files to backfill, one per first-probe time."""
    late = f"obfs4-{LAHORE}"
    parts = [
        ("fortnight.om", [t for t in targets() if t.name != late], START),
        ("late.om", [t for t in targets() if t.name == late], at(3, 0)),
    ]
    files = []
    for name, members, first in parts:
        path = directory / name
        with path.open("w") as out:
            write_openmetrics(out, members, range(first, NOW + 1, SCRAPE_INTERVAL), decide)
        files.append(path)
    return files
