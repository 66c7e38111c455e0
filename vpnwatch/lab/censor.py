"""A censor for the lab: the ways a national firewall breaks connections, staged in a namespace.

The censor sits on the lab namespace's one link to this host (``eth0``), so it stands exactly
where a firewall on the path would: between the monitor and every server, and nowhere else —
traffic inside the namespace (obfs4proxy to its backend, a server to itself) is never touched.
Packets from the monitor are judged as they arrive, answers as they leave.

nftables does what it can: silent drops, ICMP rejects, TCP resets (to the SYN, or to the first
segment that carries data), random loss (``numgen``), policing to a byte rate (``limit``),
payload matches for protocol-aware blocking (``@th``/``@ih``: DPI of handshakes, and dropping only
the data packets of tunnels whose handshakes pass), and cutting each flow after so many bytes
(conntrack's byte counts) or seconds (a set whose elements expire). Delay and jitter are what it
cannot do, and this kernel has neither netem nor NFQUEUE; so for ``delay`` tc hands the flow's
packets to a TAP device where :mod:`vpnwatch.lab.relay` holds each one before letting it
continue. Either way a packet is delayed, dropped or answered like any middlebox would: the
monitor's kernel sees nothing else.

A censor enforces one :class:`Policy` at a time; applying another replaces it, and applying the
same one again changes nothing. Everything it sets up lives in the namespace, so it goes with it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, get_args

from vpnwatch.lab.netns import LabError, Namespace, run

#: The censor's nftables table (family ``inet``: IPv4 and IPv6 alike).
TABLE = "vpnwatch_lab_censor"
#: The namespace's side of its link to this host.
WIRE = "eth0"
#: The TAP device through which ``delay`` routes packets to its userspace delay line.
DELAY_TAP = "vwdelay"
_RELAY_MODULE = "vpnwatch.lab.relay"
_RELAY_STARTUP = 10.0
#: Conntrack mark of connections ``reset-data`` has reset.
_RESET_MARK = "0x7e5e7"

Transport = Literal["tcp", "udp"]
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)
Signature = Literal["wireguard", "openvpn", "ikev2", "encrypted", "tls"]
#: Every kind of traffic ``dpi`` recognises.
ALL_SIGNATURES: tuple[Signature, ...] = get_args(Signature)
#: What ``dpi`` recognises when none is named: the VPN handshakes. ``encrypted`` (any fully
#: encrypted stream) is only applied by name, as it blocks obfs4 and Shadowsocks alike, and so is
#: ``tls`` (a ClientHello): every HTTPS server, the controls' too, receives one, so a firewall
#: blocks TLS for an address or port (an SSL VPN's), never for all.
SIGNATURES: tuple[Signature, ...] = ("wireguard", "openvpn", "ikev2")
#: Conntrack mark of connections ``dpi encrypted`` has flagged: the rest of the flow is dropped.
_ENCRYPTED_MARK = "0xe7c0de"
#: Conntrack mark of connections whose first data segment ``dpi encrypted`` has let through.
_SEEN_MARK = "0xe7c5ee"
Direction = Literal["in", "out"]
_IP_PROTOCOL_NUMBERS: dict[Transport, int] = {"tcp": 6, "udp": 17}


class CensorError(ValueError):
    """A policy that cannot be enforced as asked: the message says which part and why."""


class Mode(StrEnum):
    """What the censor does to the traffic it selects, and what the monitor should report."""

    DROP = "drop"  # silently: timeout
    REJECT = "reject"  # an ICMP error: refused (port unreachable) or unreachable (the rest)
    RESET = "reset"  # a TCP RST answering the SYN: refused
    RESET_DATA = "reset-data"  # a TCP RST once the client sends data: reset
    LOSS = "loss"  # a random share of packets towards the server (or both ways) is dropped
    THROTTLE = "throttle"  # each direction policed to a byte rate: handshakes starve
    DELAY = "delay"  # every packet held a while, both ways
    DPI = "dpi"  # WireGuard, OpenVPN, IKEv2 (or TLS) handshakes recognised and dropped
    DROP_DATA = (
        "drop-data"  # tunnel data dropped, handshakes let through: the tunnel carries nothing
    )
    CUT = "cut"  # each flow cut (dropped) once it carried so many bytes or lasted so many seconds


#: ICMP errors ``reject`` can answer with (nftables' ``icmpx`` names: IPv4 and IPv6 alike).
ICMP_ERRORS = ("port-unreachable", "host-unreachable", "no-route", "admin-prohibited")

#: Each mode's parameters and their defaults.
PARAMETERS: dict[Mode, dict[str, float | str]] = {
    Mode.REJECT: {"icmp": "port-unreachable"},
    Mode.LOSS: {"percent": 30.0, "direction": "in"},  # in: towards the server; or both
    Mode.THROTTLE: {"rate": 2048.0, "burst": 2048.0},  # bytes per second, bytes
    Mode.DELAY: {"ms": 500.0, "jitter": 0.0},  # each way; jitter: up to this much more, at random
    Mode.CUT: {"bytes": 0.0, "seconds": 0.0},  # after either (0: never), both directions counted
}


@dataclass(frozen=True, slots=True)
class Flow:
    """Which traffic a rule applies to: a transport (both when None), optionally one port."""

    transport: Transport | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if self.transport is not None and self.transport not in TRANSPORTS:
            raise CensorError(f"unknown transport {self.transport!r}: use tcp or udp")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise CensorError(f"port {self.port} is outside 1-65535")

    @property
    def transports(self) -> tuple[Transport, ...]:
        return TRANSPORTS if self.transport is None else (self.transport,)

    def nft(self, direction: Direction) -> str:
        """The nftables match for this flow's packets towards the server (in) or back (out)."""
        field_ = "dport" if direction == "in" else "sport"
        if self.transport is None:
            match = "meta l4proto { tcp, udp }"
            return match if self.port is None else f"{match} th {field_} {self.port}"
        if self.port is None:
            return f"meta l4proto {self.transport}"
        return f"{self.transport} {field_} {self.port}"


@dataclass(frozen=True, slots=True)
class Policy:
    """One censorship policy: a mode, the flows it applies to, and the mode's parameters."""

    mode: Mode
    flows: tuple[Flow, ...] = (Flow(),)
    #: For ``dpi``: which handshakes to recognise.
    signatures: tuple[Signature, ...] = SIGNATURES
    params: Mapping[str, float | str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        mode: Mode | str,
        flows: Iterable[Flow] = (Flow(),),
        signatures: Iterable[Signature] = SIGNATURES,
        **params: float | str,
    ) -> Policy:
        """Validate everything up front, so that a bad policy never half-applies."""
        try:
            mode = Mode(mode)
        except ValueError:
            known = ", ".join(m.value for m in Mode)
            raise CensorError(f"unknown censor mode {mode!r}: use one of {known}") from None
        defaults = PARAMETERS.get(mode, {})
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            allowed = ", ".join(defaults) or "none"
            raise CensorError(f"{mode} takes no parameter {unknown[0]!r} (it takes: {allowed})")
        merged = {**defaults, **params}
        flows = tuple(flows) or (Flow(),)
        if mode in (Mode.RESET, Mode.RESET_DATA):
            if all(flow.transport == "udp" for flow in flows):
                raise CensorError(f"{mode} answers with TCP resets: it needs TCP traffic")
            flows = tuple(Flow("tcp", flow.port) for flow in flows if flow.transport != "udp")
        policy = cls(mode, flows, tuple(dict.fromkeys(signatures)), merged)
        policy.nft_rules()  # raises CensorError for parameters out of range
        return policy

    def param(self, name: str) -> float:
        value = self.params[name]
        try:
            number = float(value)
        except ValueError:
            raise CensorError(f"{self.mode} {name} must be a number, not {value!r}") from None
        if number < 0:
            raise CensorError(f"{self.mode} {name} must not be negative")
        return number

    def nft_rules(self) -> list[str]:
        """The policy's rules, each for the inbound or the outbound chain."""
        rules: list[str] = []
        for flow in self.flows:
            inbound = f'iifname "{WIRE}" {flow.nft("in")}'
            outbound = f'oifname "{WIRE}" {flow.nft("out")}'
            rules += self._rules_for(flow, inbound, outbound)
        return rules

    def _rules_for(self, flow: Flow, inbound: str, outbound: str) -> list[str]:
        match self.mode:
            case Mode.DROP:
                return [f"in: {inbound} drop"]
            case Mode.REJECT:
                icmp = str(self.params["icmp"])
                if icmp not in ICMP_ERRORS:
                    raise CensorError(f"reject icmp must be one of {', '.join(ICMP_ERRORS)}")
                return [f"in: {inbound} reject with icmpx type {icmp}"]
            case Mode.RESET:
                return [f"in: {inbound} tcp flags & (syn | ack) == syn reject with tcp reset"]
            case Mode.RESET_DATA:
                # PSH marks the segment that ends a write: the first one carrying the client's
                # handshake, never a bare ACK of the three-way handshake. Like an injector on
                # the path, both ends are reset: that segment reaches the server turned into a
                # reset, and the client's retransmission of it (let through: the connection is
                # marked) meets a closed port, whose kernel resets the client. (Resetting only
                # the client would leave servers that serve one connection at a time stuck on
                # the half-open one.)
                return [
                    f"in: {inbound} ct state established ct mark != {_RESET_MARK} "
                    f"tcp flags & psh == psh ct mark set {_RESET_MARK} tcp flags set rst | ack"
                ]
            case Mode.LOSS:
                percent = self.param("percent")
                if percent > 100:
                    raise CensorError("loss percent must be at most 100")
                # Towards the server only by default: an exchange of one request and one answer
                # then fails with exactly this probability, which is what the ground-truth tests
                # measure. Both ways, each direction drops its own share independently.
                direction = str(self.params["direction"])
                if direction not in ("in", "both"):
                    raise CensorError("loss direction must be in or both")
                drop = f"numgen random mod 10000 < {round(percent * 100)} drop"
                both = direction == "both"
                return [f"in: {inbound} {drop}", *([f"out: {outbound} {drop}"] if both else [])]
            case Mode.THROTTLE:
                rate, burst = round(self.param("rate")), round(self.param("burst"))
                if rate < 1:
                    raise CensorError("throttle rate must be at least 1 byte per second")
                limit = f"limit rate over {rate} bytes/second burst {burst} bytes drop"
                return [f"in: {inbound} {limit}", f"out: {outbound} {limit}"]
            case Mode.DELAY:
                if self.param("ms") + self.param("jitter") > 60_000:
                    raise CensorError("delay ms and jitter must add up to at most 60000")
                return []  # done in userspace: see Censor._start_delay
            case Mode.DROP_DATA:
                return [
                    f"{direction}: {direction_match} {Flow(transport, flow.port).nft(direction)}"
                    f" {expression} drop"
                    for signature in self.signatures
                    for transport, expression in _DATA_MATCHES[signature]
                    if transport in flow.transports
                    for direction, direction_match in _WIRE_SIDES
                ]
            case Mode.CUT:
                size, seconds = round(self.param("bytes")), self.param("seconds")
                if not size and not seconds:
                    raise CensorError("cut needs bytes or seconds (or both)")
                if seconds > 86_400:
                    raise CensorError("cut seconds must be at most 86400")
                rules = []
                if size:
                    rules += [f"in: {inbound} ct bytes > {size} drop"]
                    rules += [f"out: {outbound} ct bytes > {size} drop"]
                if seconds:
                    # A flow's first packet puts its conntrack id in a set whose elements expire
                    # after the given time; later packets of a flow no longer in it are dropped.
                    young = f"ct id @{_YOUNG_FLOWS}"
                    rules += [
                        f"in: {inbound} ct state new add @{_YOUNG_FLOWS} {{ ct id }}",
                        f"in: {inbound} {young.replace('@', '!= @')} drop",
                        f"out: {outbound} {young.replace('@', '!= @')} drop",
                    ]
                return rules
            case Mode.DPI:
                return [
                    f'in: iifname "{WIRE}" {Flow(transport, flow.port).nft("in")} {expression}'
                    for signature in self.signatures
                    for transport, expression in _SIGNATURE_MATCHES[signature]
                    if transport in flow.transports
                ]
        raise AssertionError(self.mode)  # pragma: no cover - the match is exhaustive


#: Each direction, with the match of the wire's side it crosses.
_WIRE_SIDES: tuple[tuple[Direction, str], ...] = (
    ("in", f'iifname "{WIRE}"'),
    ("out", f'oifname "{WIRE}"'),
)
#: The set of flows ``cut`` still lets through (a conntrack id, until its element expires).
_YOUNG_FLOWS = "young"

#: How each tunnel's data packets are recognised, per transport, whoever sends them.
_DATA_MATCHES: dict[Signature, tuple[tuple[Transport, str], ...]] = {
    # A WireGuard transport data message (keepalives too): message type 4 and at least 32 bytes.
    "wireguard": (("udp", "udp length >= 40 @th,64,32 0x04000000"),),
    # OpenVPN P_DATA_V1 and P_DATA_V2 (opcodes 6 and 9, any key id); over TCP after the length.
    "openvpn": (
        ("udp", "@th,64,8 & 0xf8 { 0x30, 0x48 }"),
        ("tcp", "@ih,16,8 & 0xf8 { 0x30, 0x48 }"),
    ),
    # ESP in UDP (RFC 3948): to port 4500, a non-zero SPI where IKE has its non-ESP marker, and
    # longer than a NAT-T keepalive.
    "ikev2": (("udp", "udp dport 4500 udp length > 16 @th,64,32 != 0"),),
}

#: How each handshake is recognised, per transport: the first packet a client sends.
_SIGNATURE_MATCHES: dict[Signature, tuple[tuple[Transport, str], ...]] = {
    # A WireGuard handshake initiation: message type 1 (a little-endian 32-bit word with three
    # reserved zero bytes) and exactly 148 bytes of UDP payload.
    "wireguard": (("udp", "udp length 156 @th,64,32 0x01000000 drop"),),
    # An OpenVPN client hard reset: opcode (first byte >> 3) 7 (P_CONTROL_HARD_RESET_CLIENT_V2)
    # or 10 (…_V3), key id 0; over TCP it follows the 2-byte length. A DNS query's random ID
    # matches the pattern one time in 128, so DNS on its port is left alone, as DPI engines
    # classify it first; over TCP the length must also be small, which random bytes (obfs4's
    # first segment) rarely are.
    "openvpn": (
        ("udp", "udp dport != 53 @th,64,8 { 0x38, 0x50 } drop"),
        ("tcp", "tcp dport != 53 @ih,0,16 < 1024 @ih,16,8 { 0x38, 0x50 } drop"),
    ),
    # Fully encrypted traffic, the way the GFW is reported to find it (Wu et al., "How the Great
    # Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023): the
    # first data segment of a TCP connection is exempt when its first six bytes are printable
    # ASCII (their exemption 2) or it starts like TLS or HTTP (exemption 5; HTTP is printable);
    # otherwise it is dropped, and so is the rest of that connection. The GFW's popcount
    # exemption needs arithmetic nftables lacks; without it random bytes are caught unless their
    # first six happen to be printable, one connection in about 380 — as with the GFW's own rule.
    "encrypted": (
        ("tcp", f"ct mark {_ENCRYPTED_MARK} drop"),
        *(
            (
                "tcp",
                f"ct mark != {_SEEN_MARK} @ih,0,16 != 0x1603 @ih,{8 * i},8 {outside} "
                f"ct mark set {_ENCRYPTED_MARK} drop",
            )
            for i in range(6)
            for outside in ("< 0x20", "> 0x7e")
        ),
        # Any other first data segment was exempt: the connection is not looked at again.
        ("tcp", f"ct mark != {_SEEN_MARK} @ih,0,8 0x00-0xff ct mark set {_SEEN_MARK}"),
    ),
    # An IKEv2 IKE_SA_INIT request: a zero responder SPI, version 2.0, exchange 34, the
    # initiator flag; on UDP 4500 behind the 4-byte non-ESP marker. Every IKEv2 session starts so.
    "ikev2": (
        ("udp", "udp length > 36 @th,128,64 0 @th,200,8 0x20 @th,208,8 34 @th,216,8 0x08 drop"),
        (
            "udp",
            "udp length > 40 @th,64,32 0 @th,160,64 0 @th,232,8 0x20 @th,240,8 34 @th,248,8 0x08"
            " drop",
        ),
    ),
    # A TLS ClientHello: a handshake record (content type 22) whose message is of type 1. The
    # SSL VPNs (AnyConnect, ocserv) open with one, like any HTTPS client.
    "tls": (("tcp", "@ih,0,8 0x16 @ih,40,8 0x01 drop"),),
}


def _ruleset(policy: Policy) -> str:
    """The whole table: flushed and refilled in one transaction, so applying is atomic."""
    chains: dict[Direction, list[str]] = {"in": [], "out": []}
    for rule in policy.nft_rules():
        direction, _, text = rule.partition(": ")
        chains["in" if direction == "in" else "out"].append(text)
    hooks: dict[Direction, str] = {"in": "input", "out": "output"}
    lines = [f"table inet {TABLE} {{}}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    if policy.mode == Mode.CUT and policy.param("seconds"):
        timeout = f"{max(round(policy.param('seconds') * 1000), 1)}ms"
        lines.append(
            f"  set {_YOUNG_FLOWS} {{ typeof ct id; flags dynamic, timeout; timeout {timeout}; }}"
        )
    for direction, rules in chains.items():
        lines.append(f"  chain {hooks[direction]} {{")
        lines.append(f"    type filter hook {hooks[direction]} priority filter - 10;")
        lines += [f"    {rule}" for rule in rules]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


class Censor:
    """Enforces a :class:`Policy` in a lab namespace; ``clear`` lifts it."""

    def __init__(self, namespace: Namespace) -> None:
        self.namespace = namespace
        self.policy: Policy | None = None

    def apply(
        self,
        mode: Mode | str,
        protocol: str | None = None,
        port: int | None = None,
        **params: float | str,
    ) -> Policy:
        """Censor one transport (``tcp``/``udp``), port, or both, or everything when None.

        For ``dpi`` and ``drop-data``, ``protocol`` may also name the tunnel whose handshakes or
        data to block: ``wireguard``, ``openvpn`` or ``ikev2`` (all when None); ``dpi`` also
        takes ``encrypted`` or ``tls``.
        """
        signatures: tuple[Signature, ...] = SIGNATURES
        transport: Transport | None = None
        if (Mode(mode) == Mode.DPI and protocol in ALL_SIGNATURES) or (
            Mode(mode) == Mode.DROP_DATA and protocol in SIGNATURES
        ):
            signatures = (protocol,)
        elif protocol is not None:
            if protocol not in TRANSPORTS:
                raise CensorError(f"unknown protocol {protocol!r}: use tcp or udp")
            transport = protocol
        policy = Policy.build(mode, (Flow(transport, port),), signatures, **params)
        self.enforce(policy)
        return policy

    @contextlib.contextmanager
    def applied(
        self,
        mode: Mode | str,
        protocol: str | None = None,
        port: int | None = None,
        **params: float | str,
    ) -> Iterator[Policy]:
        """:meth:`apply` for the block, then :meth:`clear`, whatever the block raised."""
        policy = self.apply(mode, protocol, port, **params)
        try:
            yield policy
        finally:
            self.clear()

    def enforce(self, policy: Policy) -> None:
        """Replace whatever the censor did before with ``policy``."""
        self.clear()
        if policy.mode == Mode.CUT:  # conntrack counts each flow's bytes only when asked to
            self.namespace.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"])
        self.namespace.exec(["nft", "-f", "-"], input_=_ruleset(policy))
        if policy.mode == Mode.DELAY:
            try:
                self._start_delay(policy)
            except BaseException:
                self.clear()
                raise
        self.policy = policy

    def clear(self) -> None:
        """Lift every rule and stop the delay line; safe to call when nothing is applied."""
        self.namespace.exec(["nft", "delete", "table", "inet", TABLE], check=False)
        self.namespace.exec(["tc", "qdisc", "del", "dev", WIRE, "clsact"], check=False)
        self._stop_delay_lines()
        self.policy = None

    # -- delay ----------------------------------------------------------------------------

    def _start_delay(self, policy: Policy) -> None:
        seconds, jitter = policy.param("ms") / 1000, policy.param("jitter") / 1000
        relay = self.namespace.spawn(
            [sys.executable, "-m", _RELAY_MODULE, "--tap", DELAY_TAP, "--wire", WIRE,
             "--delay", f"{seconds:.6f}", "--jitter", f"{jitter:.6f}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # it outlives a `vpnwatch lab censor` that started it
        )  # fmt: skip
        _await_ready(relay)
        tap = ["ip", "link", "set", DELAY_TAP]
        # Frames written back into the TAP must look addressed to this host, so the TAP wears
        # the wire's MAC; it takes no IPv6 address of its own, so it sends nothing by itself.
        self.namespace.exec([*tap, "addrgenmode", "none"])
        self.namespace.exec([*tap, "address", _mac(self.namespace, WIRE), "up"])
        # Servers that answer from the interface a request came in on (wireguard-go's sticky
        # sockets do) send their answers into the TAP: it must know the host's MAC without
        # asking, since the delay line carries only IP.
        host_mac = Path(f"/sys/class/net/{self.namespace.host_link}/address").read_text().strip()
        for host_ip in (self.namespace.host_ip, self.namespace.host_ip6):
            self.namespace.exec(
                ["ip", "neigh", "replace", host_ip, "lladdr", host_mac, "dev", DELAY_TAP,
                 "nud", "permanent"]
            )  # fmt: skip
        self.namespace.exec(["tc", "qdisc", "add", "dev", WIRE, "clsact"])
        for flow in policy.flows:
            for transport in flow.transports:
                for hook, field_ in (("ingress", "dport"), ("egress", "sport")):
                    for prio, family, selector in (("1", "ip", "ip"), ("2", "ipv6", "ip6")):
                        match = [
                            "match", selector, "protocol", str(_IP_PROTOCOL_NUMBERS[transport]),
                            "0xff",
                        ]  # fmt: skip
                        if flow.port is not None:
                            match += ["match", selector, field_, str(flow.port), "0xffff"]
                        self.namespace.exec(
                            ["tc", "filter", "add", "dev", WIRE, hook, "protocol", family,
                             "prio", prio, "u32", *match,
                             "action", "mirred", "egress", "redirect", "dev", DELAY_TAP],
                        )  # fmt: skip

    def _stop_delay_lines(self) -> None:
        """Stop every delay line in the namespace, ours or one a CLI run left behind."""
        ours = {proc.pid: proc for proc in self.namespace.processes}
        for pid in _delay_line_pids(self.namespace):
            proc = ours.get(pid)
            if proc is None:
                _end_foreign(self.namespace, pid)
                continue
            self.namespace.stop(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def _end_foreign(namespace: Namespace, pid: int, grace: float = 5.0) -> None:
    """Terminate a delay line another process started, and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pid in _delay_line_pids(namespace):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.02)


def _await_ready(relay: subprocess.Popen[bytes]) -> None:
    """Wait for the delay line's "ready" line: its TAP exists from then on."""
    assert relay.stdout is not None
    readable, _, _ = select.select([relay.stdout], [], [], _RELAY_STARTUP)
    line = relay.stdout.readline() if readable else b""
    if line.strip() != b"ready":
        relay.kill()
        _, errors = relay.communicate(timeout=5)
        reason = errors.decode(errors="replace").strip().splitlines()
        raise LabError(f"the delay line did not start: {reason[-1] if reason else 'no output'}")


def _mac(namespace: Namespace, device: str) -> str:
    return namespace.exec(["cat", f"/sys/class/net/{device}/address"]).strip()


def _delay_line_pids(namespace: Namespace) -> list[int]:
    pids = run(["ip", "netns", "pids", namespace.name], check=False).split()
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if _RELAY_MODULE.encode() in argv:
                found.append(int(pid))
    return found
