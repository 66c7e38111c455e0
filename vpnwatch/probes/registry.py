"""Protocol name → probe, built from :data:`vpnwatch.registry.PROTOCOLS` on first use."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from vpnwatch.probes import Probe
from vpnwatch.registry import PROTOCOLS, load

#: Protocol name → "module:SPEC".
SPECS = {name: registration.spec for name, registration in PROTOCOLS.items()}


class ProbeRegistry(MutableMapping[str, Probe]):
    """The probes by protocol name, each built from its spec on first use."""

    def __init__(self, specs: dict[str, str]) -> None:
        self._specs = dict(specs)
        self._probes: dict[str, Probe] = {}

    def __getitem__(self, name: str) -> Probe:
        if name not in self._probes:
            self._probes[name] = load(self._specs[name]).probe()
        return self._probes[name]

    def __setitem__(self, name: str, probe: Probe) -> None:
        self._specs.setdefault(name, "")
        self._probes[name] = probe

    def __delitem__(self, name: str) -> None:
        del self._specs[name]
        self._probes.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


PROBES = ProbeRegistry(SPECS)
