"""A network namespace joined to this host by a veth pair: the lab's far side.

Everything the lab starts (WireGuard, OpenVPN and obfs4 servers, the censor) lives in such a
namespace, addressed from 198.18.0.0/15 (RFC 2544, reserved for benchmarking) so that no probe of
the lab can ever reach a real network. Several labs may exist at once (parallel test runs): each
claims a slot by creating its veth pair, whose unique name is the lock.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

SLOTS = range(1, 250)


class LabError(RuntimeError):
    """The lab could not be built: missing privileges, packages or kernel features."""


def run(argv: Sequence[str], *, check: bool = True, input_: str | None = None) -> str:
    """Run a command, returning its stdout; failures raise LabError with its stderr."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input_, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def remove_namespace(name: str) -> None:
    """Kill whatever still runs in namespace ``name`` (daemons that forked), then delete it."""
    for pid in run(["ip", "netns", "pids", name], check=False).split():
        with contextlib.suppress(OSError):
            run(["kill", "-9", pid], check=False)
    run(["ip", "netns", "del", name], check=False)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Terminate ``proc``; kill it if it has not exited within ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Namespace:
    """A namespace with one veth link to the host; use as a context manager.

    ``host_ip`` is this host's side of the link, ``ip`` the namespace's; ``ip6``/``host_ip6`` are
    the same link's IPv6 addresses (from 2001:2::/48, also reserved for benchmarking).
    """

    slot: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"vpnwatch-lab{self.slot}"

    @property
    def host_link(self) -> str:
        return f"vwlab{self.slot}h"

    @property
    def ip(self) -> str:
        return f"198.18.{self.slot}.2"

    @property
    def host_ip(self) -> str:
        return f"198.18.{self.slot}.1"

    @property
    def ip6(self) -> str:
        return f"2001:2:0:{self.slot:x}::2"

    @property
    def host_ip6(self) -> str:
        return f"2001:2:0:{self.slot:x}::1"

    def __enter__(self) -> Namespace:
        self.create()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def create(self) -> None:
        slots = list(SLOTS)
        random.shuffle(slots)
        for slot in slots:
            self.slot = slot
            peer = f"vwlab{slot}n"
            proc = subprocess.run(
                ["ip", "link", "add", self.host_link, "type", "veth", "peer", "name", peer],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0:
                break
            if "File exists" not in proc.stderr:
                raise LabError(f"cannot create a veth pair (are you root?): {proc.stderr.strip()}")
        else:
            raise LabError("every lab slot is taken: remove stale vwlab* links")
        try:
            run(["ip", "netns", "add", self.name])
            run(["ip", "link", "set", peer, "netns", self.name])
            run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_link])
            run(["ip", "-6", "addr", "add", f"{self.host_ip6}/64", "dev", self.host_link, "nodad"])
            run(["ip", "link", "set", self.host_link, "up"])
            self.exec(["ip", "link", "set", "lo", "up"])
            # Linux rate-limits ICMP errors per destination and per namespace; a lab probing many
            # closed ports must see every "port unreachable", as monitors far apart would.
            self.exec(
                ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
                 "net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=100000"]
            )  # fmt: skip
            self.exec(["ip", "link", "set", peer, "name", "eth0"])
            self.exec(["ip", "addr", "add", f"{self.ip}/30", "dev", "eth0"])
            self.exec(["ip", "-6", "addr", "add", f"{self.ip6}/64", "dev", "eth0", "nodad"])
            self.exec(["ip", "link", "set", "eth0", "up"])
            self.exec(["ip", "route", "add", "default", "via", self.host_ip])
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        """Stop every process started here and remove the namespace and its link."""
        self._remove()
        run(["ip", "link", "del", self.host_link], check=False)

    def _remove(self) -> None:
        """Stop every process started here, then remove the namespace (its link is the caller's)."""
        for proc in reversed(self.processes):
            stop_process(proc)
        self.processes.clear()
        remove_namespace(self.name)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv: Sequence[str], *, check: bool = True, input_: str | None = None) -> str:
        """Run a command inside the namespace and return its stdout."""
        return run(self.argv(argv), check=check, input_=input_)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop one process started with :meth:`spawn` before the namespace goes."""
        stop_process(proc)
        with contextlib.suppress(ValueError):
            self.processes.remove(proc)

    def spawn(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the namespace; it is stopped on destroy."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.argv(argv), **kwargs)  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc
