"""What a report says, independent of its format: its provenance and the summary sentences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from vpnwatch import __version__
from vpnwatch.messages import Catalogue
from vpnwatch.messages import load as load_messages
from vpnwatch.registry import PROTOCOLS
from vpnwatch.report.dataset import Dataset
from vpnwatch.report.incidents import CONTROLS, Analysis, Gap, Incident
from vpnwatch.report.timespec import DURATION_UNITS, format_duration

#: A protocol whose handshakes succeeded less often than this during its incidents is "unusable".
UNUSABLE_BELOW = 0.1


def described(protocols: Sequence[str]) -> list[str]:
    """Those of ``protocols`` whose probe the report's methodology can describe (registered)."""
    return [protocol for protocol in protocols if protocol in PROTOCOLS]


def display_name(protocol: str) -> str:
    """The protocol's name as its users write it; an unknown label as it came."""
    registration = PROTOCOLS.get(protocol)
    return registration.display if registration else protocol


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
    """One sentence per site: which protocols were blocked, for how long, and local outages.

    It never calls a protocol unaffected where one of its targets had an incident, says when an
    incident may have begun before or lasted beyond what the report sees, and says how long the
    report had no data.
    """
    m = report.messages
    analysis = report.analysis
    sentences = []
    for site in analysis.sites:
        at_site = [i for i in report.incidents if i.site == site]
        targets = Counter(
            s.key.protocol for s in report.dataset.series if s.key.site == site and not s.control
        )
        sentence = _protocols_sentence(m, site, analysis.protocols_at(site), at_site, targets)
        offline = [i for i in at_site if i.scope == "site"]
        if offline:
            total = duration(sum(i.duration for i in offline), m)
            sentence += m("summary.site_down", duration=total)
        if (site, CONTROLS) not in analysis.rollups:
            sentence += m("summary.no_controls")
        sentence += _gaps_sentence(m, [gap for gap in analysis.gaps if gap.site == site])
        sentences.append(sentence)
    return sentences


def _protocols_sentence(
    m: Catalogue,
    site: str,
    protocols: Sequence[str],
    incidents: Sequence[Incident],
    targets: Mapping[str, int],
) -> str:
    if not protocols:
        return m("summary.only_controls", site=m.ltr(site))
    phrases: list[str] = []
    during_outage: list[str] = []
    unaffected: list[str] = []
    for protocol in protocols:
        name = display_name(protocol)
        own = [i for i in incidents if i.protocol == protocol and i.scope != "site"]
        blocked = [i for i in own if i.scope == "protocol" and i.verdict != "offline"]
        failing_incidents = [i for i in own if i.scope == "target" and i.verdict != "offline"]
        failing = sorted({t for i in failing_incidents for t in i.targets})
        where = "" if phrases else m("summary.from_site", site=m.ltr(site))
        if blocked:
            phrases.append(_blocked_phrase(m, name, where, blocked))
        elif failing:
            phrases.append(
                m(
                    "summary.targets_failed",
                    protocol=name,
                    where=where,
                    failed=len(failing),
                    total=targets.get(protocol, len(failing)),
                    targets=m("summary.comma").join(m.ltr(target) for target in failing),
                    incidents=m("summary.incidents", count=len(failing_incidents)),
                )
            )
        elif own:
            during_outage.append(name)
        else:
            unaffected.append(name)
    tail = []
    if during_outage:
        tail.append(m("summary.offline_only", names=_join(m, during_outage)))
    if unaffected:
        tail.append(m("summary.unaffected", names=_join(m, unaffected)))
    if not phrases:
        return m("summary.no_blocking", site=m.ltr(site), details=m("summary.semicolon").join(tail))
    return m("summary.semicolon").join(phrases + tail) + m("summary.full_stop")


def _blocked_phrase(m: Catalogue, name: str, where: str, blocked: Sequence[Incident]) -> str:
    """``WireGuard unusable from site k for at least 3 h (1 h of it without data)``."""
    probes = sum(i.probes for i in blocked)
    succeeded = 1 - sum(i.failures for i in blocked) / probes if probes else 0.0
    total = duration(sum(i.duration for i in blocked), m)
    if any(i.open_start or i.open_end for i in blocked):
        total = m("summary.at_least", duration=total)
    phrase = m(
        "summary.unusable" if succeeded < UNUSABLE_BELOW else "summary.degraded",
        protocol=name,
        where=where,
        duration=total,
        percent=f"{succeeded:.0%}",
    )
    if len(blocked) > 1:
        phrase += m("summary.in_incidents", count=len(blocked))
    unknown = sum(i.without_data for i in blocked)
    if unknown:
        phrase += m("summary.without_data", duration=duration(unknown, m))
    return phrase


def _gaps_sentence(m: Catalogue, gaps: Sequence[Gap]) -> str:
    """What the report does not know: how long the site, or one protocol there, had no data."""
    parts = []
    whole = [gap for gap in gaps if not gap.protocol]
    if whole:
        parts.append(
            m(
                "summary.no_data_site",
                duration=duration(sum(g.duration for g in whole), m),
                periods=m("summary.in_periods", count=len(whole)),
            )
        )
    for protocol in sorted({gap.protocol for gap in gaps if gap.protocol}):
        some = [gap for gap in gaps if gap.protocol == protocol]
        parts.append(
            m(
                "summary.no_data_protocol",
                protocol=display_name(protocol),
                duration=duration(sum(g.duration for g in some), m),
                periods=m("summary.in_periods", count=len(some)),
            )
        )
    return "".join(parts)


def _join(m: Catalogue, names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return m("summary.comma").join(names[:-1]) + m("summary.and") + names[-1]


def duration(seconds: float, messages: Catalogue) -> str:
    """``3 h 12 min`` with the units of the reader's language."""
    return format_duration(seconds, {unit: messages(f"units.{unit}") for unit in DURATION_UNITS})
