"""The scripted day the report must tell back exactly: 2024-03-10, two sites, probes every 30 s.

karachi-1 (UTC+5):
- WireGuard blocked 02:00-05:00 UTC: every handshake times out (both WireGuard targets);
- OpenVPN at 40 % 08:00-13:00 UTC (13:00-18:00 in Karachi): resets at the TLS stage, and the
  handshakes that do succeed are slow;
- obfs4 fine, apart from a one-minute blip at 10:00 (two failed probes): no incident.
lahore-2 (UTC+5):
- one WireGuard server (wg-lahore-2-b) refuses our key 06:00-07:00: a target incident, but the
  protocol still works through wg-lahore-2-a, so no protocol incident;
- WireGuard flaps 15:00-15:40: down 5 min, up 5 min, three times, then down 10 min: one incident;
- the site itself offline 20:00-20:20: every probe fails, the control probes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.report.openmetrics import Outcome, Target, write_openmetrics

DAY = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp())
SCRAPE_INTERVAL = 30
KARACHI, LAHORE = "karachi-1", "lahore-2"
HANDSHAKE_SECONDS = {"wireguard": 0.04, "openvpn": 0.35, "obfs4": 0.25}
SLOW_OPENVPN_SECONDS = 1.4


def at(hours: int, minutes: int = 0) -> int:
    return DAY + hours * 3600 + minutes * 60


def targets() -> list[Target]:
    found = []
    for site in (KARACHI, LAHORE):
        found += [
            Target(site, f"wg-{site}-a", "wireguard"),
            Target(site, f"wg-{site}-b", "wireguard"),
            Target(site, f"ovpn-{site}", "openvpn", transport="tcp"),
            Target(site, f"obfs4-{site}", "obfs4", transport="tcp"),
            Target(site, f"ctl-tcp-{site}", "tcp", role="control", transport="tcp"),
            Target(site, f"ctl-tls-{site}", "tls", role="control", transport="tcp"),
            Target(site, f"ctl-dns-{site}", "dns", role="control"),
        ]
    return found


def _between(t: float, start: int, end: int) -> bool:
    return start <= t < end


LAHORE_FLAPS = [(at(15, 0), at(15, 5)), (at(15, 10), at(15, 15)), (at(15, 20), at(15, 25)),
                (at(15, 30), at(15, 40))]  # fmt: skip


def decide(target: Target, t: float) -> Outcome:
    """What the probe of ``target`` at time ``t`` found."""
    site, protocol = target.site, target.protocol
    if site == LAHORE and _between(t, at(20), at(20, 20)):
        return ("timeout", "handshake") if protocol == "wireguard" else ("unreachable", "connect")
    if site == KARACHI and protocol == "wireguard" and _between(t, at(2), at(5)):
        return ("timeout", "handshake")
    if site == KARACHI and protocol == "openvpn" and _between(t, at(8), at(13)):
        probe_number = int(t - at(8)) // SCRAPE_INTERVAL
        if probe_number % 5 in (1, 3, 4):  # 2 of every 5 succeed: 40 %
            return ("reset", "tls")
        return SLOW_OPENVPN_SECONDS
    if site == KARACHI and protocol == "obfs4" and _between(t, at(10), at(10, 1)):
        return ("eof", "handshake")
    if target.name == f"wg-{LAHORE}-b" and _between(t, at(6), at(7)):
        return ("auth", "handshake")
    if site == LAHORE and protocol == "wireguard" and any(_between(t, *f) for f in LAHORE_FLAPS):
        return ("timeout", "handshake")
    return HANDSHAKE_SECONDS.get(protocol, 0.02)


def scrape_times() -> range:
    # from 23:00 the day before, so that the first hour's "latency before" has data
    return range(DAY - 3600, DAY + 86400 + SCRAPE_INTERVAL, SCRAPE_INTERVAL)


def write(path: Path) -> None:
    with path.open("w") as out:
        write_openmetrics(out, targets(), scrape_times(), decide)


@dataclass(frozen=True)
class Expected:
    scope: str
    site: str
    protocol: str
    targets: tuple[str, ...]
    start: int
    end: int
    verdict: str


def expected_incidents() -> list[Expected]:
    wg_k = (f"wg-{KARACHI}-a", f"wg-{KARACHI}-b")
    wg_l = (f"wg-{LAHORE}-a", f"wg-{LAHORE}-b")
    found = [
        Expected("protocol", KARACHI, "wireguard", wg_k, at(2), at(5), "failing"),
        *(Expected("target", KARACHI, "wireguard", (t,), at(2), at(5), "failing") for t in wg_k),
        Expected("target", LAHORE, "wireguard", (wg_l[1],), at(6), at(7), "failing"),
        Expected("protocol", KARACHI, "openvpn", (f"ovpn-{KARACHI}",), at(8), at(13), "failing"),
        Expected("target", KARACHI, "openvpn", (f"ovpn-{KARACHI}",), at(8), at(13), "failing"),
        Expected("protocol", LAHORE, "wireguard", wg_l, at(15), at(15, 40), "failing"),
        *(Expected("target", LAHORE, "wireguard", (t,), at(15), at(15, 40), "failing") for t in wg_l),
        Expected("site", LAHORE, "controls",
                 tuple(f"ctl-{p}-{LAHORE}" for p in ("dns", "tcp", "tls")), at(20), at(20, 20),
                 "offline"),
    ]  # fmt: skip
    for protocol, names in (
        ("wireguard", wg_l),
        ("openvpn", (f"ovpn-{LAHORE}",)),
        ("obfs4", (f"obfs4-{LAHORE}",)),
    ):
        found.append(Expected("protocol", LAHORE, protocol, names, at(20), at(20, 20), "offline"))
        found += [
            Expected("target", LAHORE, protocol, (name,), at(20), at(20, 20), "offline")
            for name in names
        ]
    return found
