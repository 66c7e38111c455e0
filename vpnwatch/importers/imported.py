"""What an importer gives back: the targets it found, and the entries it deliberately skipped.

Users' files hold more than vpnwatch can probe: a Tor bridge list mixes obfs4 with snowflake and
webtunnel lines, a subscription list mixes link schemes. Refusing the whole file for one such
entry would leave the rest unmonitored, and dropping it silently would let a user believe it is
watched. So an importer returns the targets it can probe plus a :class:`Skipped` for each entry
it cannot, with the reason, and ``vpnwatch config check`` (and ``check``, ``run``) shows them.
Nothing here is specific to one protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vpnwatch.targets.base import TargetBase


@dataclass(frozen=True, slots=True)
class Skipped:
    """One entry of a file that is valid for its own client but not probed by vpnwatch.

    Never holds the entry's text itself (it may carry keys or passwords): only where it is, what
    kind of entry it is, as the file names it, and why it is skipped.
    """

    #: The file it is in.
    source: str
    #: Where in the file: ``line 3``.
    where: str
    #: What it is, in the file's own words: ``snowflake bridge``, ``vmess:// link``.
    entry: str
    #: Why it is not probed: ``vpnwatch does not speak the snowflake transport``.
    reason: str

    def describe(self) -> str:
        """One line for a person: ``bridges.txt: line 3: snowflake bridge: …``."""
        return f"{self.source}: {self.where}: {self.entry}: {self.reason}"

    def record(self) -> dict[str, str]:
        """The same, for JSON output."""
        return {
            "source": self.source,
            "where": self.where,
            "entry": self.entry,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Imported:
    """Everything one file gave: targets to probe and entries skipped, each in file order."""

    targets: Sequence[TargetBase]
    skipped: Sequence[Skipped] = field(default_factory=tuple)
