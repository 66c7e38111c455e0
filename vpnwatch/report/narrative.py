"""What a report says, independent of its format: its provenance and the summary sentences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from vpnwatch import __version__
from vpnwatch.report.dataset import Dataset
from vpnwatch.report.incidents import CONTROLS, Analysis, Gap, Incident
from vpnwatch.report.timespec import format_duration

#: A protocol whose handshakes succeeded less often than this during its incidents is "unusable".
UNUSABLE_BELOW = 0.1
_DISPLAY_NAMES = {"wireguard": "WireGuard", "openvpn": "OpenVPN", "obfs4": "obfs4"}


def display_name(protocol: str) -> str:
    return _DISPLAY_NAMES.get(protocol, protocol)


@dataclass(frozen=True, slots=True)
class Report:
    """Everything any output format shows."""

    prometheus: str
    start: float
    end: float
    zone: tzinfo
    zone_name: str
    selector: str
    dataset: Dataset
    analysis: Analysis
    version: str = __version__

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return self.analysis.incidents

    def main_incidents(self) -> list[Incident]:
        """Site and protocol incidents: what a reader needs; target incidents are the detail."""
        return [i for i in self.incidents if i.scope != "target"]

    def target_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.scope == "target"]


def summary(report: Report) -> list[str]:
    """One sentence per site: which protocols were blocked, for how long, and local outages.

    It never calls a protocol unaffected where one of its targets had an incident, says when an
    incident may have begun before or lasted beyond what the report sees, and says how long the
    report had no data.
    """
    analysis = report.analysis
    sentences = []
    for site in analysis.sites:
        at_site = [i for i in report.incidents if i.site == site]
        targets = Counter(
            s.key.protocol for s in report.dataset.series if s.key.site == site and not s.control
        )
        sentence = _protocols_sentence(site, analysis.protocols_at(site), at_site, targets)
        offline = [i for i in at_site if i.scope == "site"]
        if offline:
            total = format_duration(sum(i.duration for i in offline))
            sentence += (
                f" The site's own network was down for {total} (its control probes failed"
                " too): failures then show no blocking."
            )
        if (site, CONTROLS) not in analysis.rollups:
            sentence += (
                " No control probes ran at this site, so blocking cannot be told apart from"
                " a local outage."
            )
        sentence += _gaps_sentence([gap for gap in analysis.gaps if gap.site == site])
        sentences.append(sentence)
    return sentences


def _protocols_sentence(
    site: str,
    protocols: Sequence[str],
    incidents: Sequence[Incident],
    targets: Mapping[str, int],
) -> str:
    if not protocols:
        return f"Only control probes ran at site {site}."
    phrases: list[str] = []
    during_outage: list[str] = []
    unaffected: list[str] = []
    for protocol in protocols:
        name = display_name(protocol)
        own = [i for i in incidents if i.protocol == protocol and i.scope != "site"]
        blocked = [i for i in own if i.scope == "protocol" and i.verdict != "offline"]
        failing = sorted(
            {t for i in own if i.scope == "target" and i.verdict != "offline" for t in i.targets}
        )
        where = f" from site {site}" if not phrases else ""
        if blocked:
            phrases.append(_blocked_phrase(name, where, blocked))
        elif failing:
            count = len([i for i in own if i.scope == "target" and i.verdict != "offline"])
            phrases.append(
                f"{name} worked{where} overall, but {len(failing)} of its"
                f" {targets.get(protocol, len(failing))} targets failed"
                f" ({', '.join(failing)}; {count} incident{'s' if count != 1 else ''})"
            )
        elif own:
            during_outage.append(name)
        else:
            unaffected.append(name)
    tail = []
    if during_outage:
        tail.append(f"{_join(during_outage)} failed only while the site was offline")
    if unaffected:
        tail.append(f"{_join(unaffected)} unaffected")
    if not phrases:
        return f"From site {site} no protocol was blocked: {'; '.join(tail)}."
    return "; ".join(phrases + tail) + "."


def _blocked_phrase(name: str, where: str, blocked: Sequence[Incident]) -> str:
    """``WireGuard unusable from site k for at least 3 h (1 h of it without data)``."""
    probes = sum(i.probes for i in blocked)
    succeeded = 1 - sum(i.failures for i in blocked) / probes if probes else 0.0
    duration = format_duration(sum(i.duration for i in blocked))
    if any(i.open_start or i.open_end for i in blocked):
        duration = f"at least {duration}"
    if succeeded < UNUSABLE_BELOW:
        phrase = f"{name} unusable{where} for {duration}"
    else:
        phrase = f"{name} degraded{where} for {duration} ({succeeded:.0%} of handshakes succeeded)"
    if len(blocked) > 1:
        phrase += f" in {len(blocked)} incidents"
    unknown = sum(i.without_data for i in blocked)
    if unknown:
        phrase += f" ({format_duration(unknown)} of it without data)"
    return phrase


def _gaps_sentence(gaps: Sequence[Gap]) -> str:
    """What the report does not know: how long the site, or one protocol there, had no data."""
    parts = []
    whole = [gap for gap in gaps if not gap.protocol]
    if whole:
        parts.append(
            f" No data at all for {format_duration(sum(g.duration for g in whole))}"
            f"{_periods(whole)} (the monitor was not running or not scraped): nothing is known"
            " of that time."
        )
    for protocol in sorted({gap.protocol for gap in gaps if gap.protocol}):
        some = [gap for gap in gaps if gap.protocol == protocol]
        parts.append(
            f" No {display_name(protocol)} data for"
            f" {format_duration(sum(g.duration for g in some))}{_periods(some)}."
        )
    return "".join(parts)


def _periods(gaps: Sequence[Gap]) -> str:
    return f" in {len(gaps)} periods" if len(gaps) > 1 else ""


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
