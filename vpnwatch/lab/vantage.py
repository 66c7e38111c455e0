"""A client's namespace joined straight to a lab Namespace: one vantage point for real clients
and vpnwatch side by side.

The interop tests run a real client (a wireguard-go interface, obfs4proxy as Tor runs it) and
``vpnwatch check`` from the same place, against the same server, so that their verdicts can be
compared. That place is a namespace of its own, linked directly to the server's lab namespace by
a second veth pair (no forwarding on this host is needed). It is a :class:`Namespace` in every
other way (``exec``, ``spawn``, ``argv``), so a
:class:`~vpnwatch.lab.resolver.NamespaceResolver` gives it a resolver of the test's choosing.

Addresses come from the server namespace's own slot (``198.18.<slot>.4/30`` and
``2001:2:1:<slot>::/64``), so several labs can each have a vantage at once.
"""

from __future__ import annotations

from vpnwatch.lab.netns import Namespace, run


class Vantage(Namespace):
    """A namespace whose only link leads to ``server``'s namespace; use as a context manager."""

    def __init__(self, server: Namespace) -> None:
        super().__init__(slot=server.slot)
        self.server = server

    @property
    def name(self) -> str:
        return f"{self.server.name}c"

    @property
    def host_link(self) -> str:
        """The link's end in the server's namespace (a vantage has none on this host)."""
        return f"vwlab{self.slot}s"

    @property
    def ip(self) -> str:
        return f"198.18.{self.slot}.6"

    @property
    def host_ip(self) -> str:
        """The server namespace's address on this link."""
        return f"198.18.{self.slot}.5"

    @property
    def ip6(self) -> str:
        return f"2001:2:1:{self.slot:x}::2"

    @property
    def host_ip6(self) -> str:
        return f"2001:2:1:{self.slot:x}::1"

    def create(self) -> None:
        run(["ip", "netns", "add", self.name])
        try:
            inner = f"vwlab{self.slot}c"
            self.server.exec(
                ["ip", "link", "add", self.host_link, "type", "veth", "peer", "name", inner,
                 "netns", self.name]
            )  # fmt: skip
            self.server.exec(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_link])
            self.server.exec(
                ["ip", "-6", "addr", "add", f"{self.host_ip6}/64", "dev", self.host_link, "nodad"]
            )
            self.server.exec(["ip", "link", "set", self.host_link, "up"])
            self.exec(["ip", "link", "set", "lo", "up"])
            self.exec(["ip", "link", "set", inner, "name", "eth0"])
            self.exec(["ip", "addr", "add", f"{self.ip}/30", "dev", "eth0"])
            self.exec(["ip", "-6", "addr", "add", f"{self.ip6}/64", "dev", "eth0", "nodad"])
            self.exec(["ip", "link", "set", "eth0", "up"])
            self.exec(["ip", "route", "add", "default", "via", self.host_ip])
            self.exec(["ip", "-6", "route", "add", "default", "via", self.host_ip6])
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        """Stop what runs here, remove the namespace and its link; the server's stays."""
        self._remove()
        self.server.exec(["ip", "link", "del", self.host_link], check=False)
