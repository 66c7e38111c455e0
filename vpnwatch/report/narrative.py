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
from vpnwatch.report.timespec import DURATION_UNITS, format_duration

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
    m = report.messages
    analysis = report.analysis
    sentences = []
    for site in analysis.sites:
        at_site = [i for i in report.incidents if i.site == site]
        sentence = _protocols_sentence(m, site, analysis.protocols_at(site), at_site)
        offline = [i for i in at_site if i.scope == "site"]
        if offline:
            total = duration(sum(i.duration for i in offline), m)
            sentence += m("summary.site_down", duration=total)
        if (site, CONTROLS) not in analysis.rollups:
            sentence += m("summary.no_controls")
        sentences.append(sentence)
    return sentences


def _protocols_sentence(
    m: Catalogue, site: str, protocols: Sequence[str], incidents: Sequence[Incident]
) -> str:
    if not protocols:
        return m("summary.only_controls", site=m.ltr(site))
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
        facts = {
            "protocol": display_name(protocol),
            "where": "" if phrases else m("summary.from_site", site=m.ltr(site)),
            "duration": duration(sum(i.duration for i in blocked), m),
            "percent": f"{succeeded:.0%}",
        }
        phrase = m(
            "summary.unusable" if succeeded < UNUSABLE_BELOW else "summary.degraded", **facts
        )
        if len(blocked) > 1:
            phrase += m("summary.in_incidents", count=len(blocked))
        phrases.append(phrase)
    if not phrases:
        return m("summary.no_blocking", site=m.ltr(site), names=_join(m, unaffected))
    if unaffected:
        phrases.append(m("summary.unaffected", names=_join(m, unaffected)))
    return m("summary.semicolon").join(phrases) + m("summary.full_stop")


def _join(m: Catalogue, names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return m("summary.comma").join(names[:-1]) + m("summary.and") + names[-1]


def duration(seconds: float, messages: Catalogue) -> str:
    """``3 h 12 min`` with the units of the reader's language."""
    return format_duration(seconds, {unit: messages(f"units.{unit}") for unit in DURATION_UNITS})
