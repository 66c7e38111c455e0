"""A client's namespace joined straight to a lab Namespace: one vantage point for real clients
and vpnwatch side by side.

The interop tests run a real client (a wireguard-go interface, obfs4proxy as Tor runs it) and
``vpnwatch check`` from the same place, against the same server, so that their verdicts can be
compared. That place is a namespace of its own, linked directly to the server's lab namespace by
a second veth pair (no forwarding on this host is needed), with a resolver of the test's choosing:
``ip netns exec`` puts ``/etc/netns/<name>/resolv.conf`` in place of ``/etc/resolv.conf`` for
every program it runs, so host names in a user's file resolve through a dnsmasq the test started
and nowhere else.

Addresses come from the server namespace's own slot (``198.18.<slot>.4/30`` and
``2001:2:1:<slot>::/64``), so several labs can each have a vantage at once.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from vpnwatch.lab.controls import wait_listening
from vpnwatch.lab.netns import Namespace, run

NETNS_ETC = Path("/etc/netns")


class Vantage:
    """A namespace whose only link leads to ``server``'s namespace; use as a context manager."""

    def __init__(self, server: Namespace) -> None:
        self.server = server
        self.name = f"{server.name}c"
        self._link = f"vwlab{server.slot}c"
        self._peer = f"vwlab{server.slot}s"
        self._resolver: subprocess.Popen[bytes] | None = None

    @property
    def ip(self) -> str:
        return f"198.18.{self.server.slot}.6"

    @property
    def server_ip(self) -> str:
        """The server namespace's address on this link (its resolver listens here)."""
        return f"198.18.{self.server.slot}.5"

    @property
    def ip6(self) -> str:
        return f"2001:2:1:{self.server.slot:x}::2"

    @property
    def server_ip6(self) -> str:
        return f"2001:2:1:{self.server.slot:x}::1"

    def __enter__(self) -> Vantage:
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def create(self) -> None:
        run(["ip", "netns", "add", self.name])
        self.server.exec(
            ["ip", "link", "add", self._peer, "type", "veth", "peer", "name", self._link,
             "netns", self.name]
        )  # fmt: skip
        self.exec(["ip", "link", "set", self._link, "name", "eth0"])
        self.server.exec(["ip", "addr", "add", f"{self.server_ip}/30", "dev", self._peer])
        self.server.exec(
            ["ip", "-6", "addr", "add", f"{self.server_ip6}/64", "dev", self._peer, "nodad"]
        )
        self.server.exec(["ip", "link", "set", self._peer, "up"])
        self.exec(["ip", "link", "set", "lo", "up"])
        self.exec(["ip", "addr", "add", f"{self.ip}/30", "dev", "eth0"])
        self.exec(["ip", "-6", "addr", "add", f"{self.ip6}/64", "dev", "eth0", "nodad"])
        self.exec(["ip", "link", "set", "eth0", "up"])
        self.exec(["ip", "route", "add", "default", "via", self.server_ip])
        self.exec(["ip", "-6", "route", "add", "default", "via", self.server_ip6])

    def resolve_with(self, *records: tuple[str, str]) -> None:
        """Start dnsmasq in the server's namespace and make it this vantage's only resolver.

        ``records`` are (name, address) pairs it answers (A or AAAA by the address); every name
        under ``.invalid`` gets NXDOMAIN, as RFC 6761 says it must.
        """
        argv = [
            "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
            f"--listen-address={self.server_ip}", "--port=53", "--pid-file=",
            "--conf-file=/dev/null", "--address=/invalid/",
            *(f"--host-record={name},{address}" for name, address in records),
        ]  # fmt: skip
        self._resolver = self.server.spawn(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.server, 53, "udp")
        directory = NETNS_ETC / self.name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(
            f"nameserver {self.server_ip}\noptions timeout:1 attempts:2\n"
        )

    def destroy(self) -> None:
        """Remove the namespace, its link and its resolver configuration."""
        if self._resolver is not None:
            self.server.stop(self._resolver)
            self._resolver = None
        for pid in run(["ip", "netns", "pids", self.name], check=False).split():
            run(["kill", "-9", pid], check=False)
        run(["ip", "netns", "del", self.name], check=False)
        self.server.exec(["ip", "link", "del", self._peer], check=False)
        shutil.rmtree(NETNS_ETC / self.name, ignore_errors=True)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside the vantage."""
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv: Sequence[str], *, check: bool = True) -> str:
        return run(self.argv(argv), check=check)
