"""What a report says, independent of its format: its provenance and the summary sentences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from vpnwatch import __version__
from vpnwatch.messages import Catalogue
from vpnwatch.messages import load as load_messages
from vpnwatch.report.dataset import Dataset
from vpnwatch.report.incidents import CONTROLS, Analysis, Incident
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
    #: the words of the reader's language
    messages: Catalogue = field(default_factory=load_messages)

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return self.analysis.incidents

    def main_incidents(self) -> list[Incident]:
        """Site and protocol incidents: what a reader needs; target incidents are the detail."""
        return [i for i in self.incidents if i.scope != "target"]

    def target_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.scope == "target"]


def summary(report: Report) -> list[str]:
    """One sentence per site: which protocols were blocked, for how long, and local outages."""
    analysis = report.analysis
    sentences = []
    for site in analysis.sites:
        at_site = [i for i in report.incidents if i.site == site]
        sentence = _protocols_sentence(site, analysis.protocols_at(site), at_site)
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
        sentences.append(sentence)
    return sentences


def _protocols_sentence(site: str, protocols: Sequence[str], incidents: Sequence[Incident]) -> str:
    if not protocols:
        return f"Only control probes ran at site {site}."
    phrases: list[str] = []
    unaffected: list[str] = []
    for protocol in protocols:
        blocked = [
            i
            for i in incidents
            if i.scope == "protocol" and i.protocol == protocol and i.verdict != "offline"
        ]
        if not blocked:
            unaffected.append(display_name(protocol))
            continue
        probes = sum(i.probes for i in blocked)
        succeeded = 1 - sum(i.failures for i in blocked) / probes if probes else 0.0
        where = f" from site {site}" if not phrases else ""
        duration = format_duration(sum(i.duration for i in blocked))
        phrase = f"{display_name(protocol)} "
        if succeeded < UNUSABLE_BELOW:
            phrase += f"unusable{where} for {duration}"
        else:
            phrase += f"degraded{where} for {duration} ({succeeded:.0%} of handshakes succeeded)"
        if len(blocked) > 1:
            phrase += f" in {len(blocked)} incidents"
        phrases.append(phrase)
    if not phrases:
        return f"From site {site} no protocol was blocked: {_join(unaffected)} unaffected."
    if unaffected:
        phrases.append(f"{_join(unaffected)} unaffected")
    return "; ".join(phrases) + "."


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
