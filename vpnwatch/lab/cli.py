"""``vpnwatch lab censor MODE [PROTOCOL]``: stage a crackdown on a running lab, and lift it.

It finds the lab ``vpnwatch demo`` (or a test) is running by its namespace, ``vpnwatch-lab<slot>``,
and applies the censor there. PROTOCOL is a transport (``tcp``, ``udp``) or one of the lab's
services (``wireguard``, ``openvpn``, ``obfs4``, ``tls``, ``dns``), found by what listens in the
namespace; for ``dpi`` it names the handshake to recognise, on any port.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from vpnwatch.errors import ConfigError
from vpnwatch.lab.censor import (
    ALL_SIGNATURES,
    ICMP_ERRORS,
    PARAMETERS,
    SIGNATURES,
    TRANSPORTS,
    Censor,
    CensorError,
    Flow,
    Mode,
    Policy,
)
from vpnwatch.lab.netns import LabError, Namespace, run

EXIT_OK, EXIT_LAB, EXIT_USAGE = 0, 1, 2
CLEAR = "clear"
_PREFIX = "vpnwatch-lab"

#: The lab's services by the program that serves them.
SERVICES = {
    "wireguard-go": "wireguard",
    "openvpn": "openvpn",
    "obfs4proxy": "obfs4",
    "ss-server": "shadowsocks",
    "obfs-server": "shadowsocks",
    "ss-v2ray-plugin": "shadowsocks",
    "trojan": "trojan",
    "openssl": "tls",
    "dnsmasq": "dns",
    "charon": "ikev2",
    "ocserv-main": "anyconnect",
}
_SS_PROCESS = re.compile(r'users:\(\("([^"]+)"')


def add_lab_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``lab`` on the ``vpnwatch`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lab", help="act on a running lab (vpnwatch demo): stage a censor (root)"
    )
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    censor = actions.add_parser(
        "censor",
        help="censor the lab's traffic the way a national firewall does, or clear it",
        description=(
            "Apply one censorship policy to the running lab, replacing any before it: drop"
            " (timeout), reject (refused, or unreachable for other ICMP errors), reset (RST to"
            " the SYN: refused), reset-data (RST once data flows: reset), loss, throttle, delay"
            " (with --jitter), dpi (WireGuard, OpenVPN and IKEv2 handshakes recognised and"
            " dropped; 'dpi encrypted': fully encrypted TCP streams, as the GFW finds"
            " Shadowsocks; 'dpi anyconnect': TLS ClientHellos to the gateway's port), drop-data"
            " (their data dropped, handshakes let through), cut (each flow after --bytes or"
            " --seconds). 'clear' lifts it."
        ),
    )
    censor.add_argument("mode", choices=[*(mode.value for mode in Mode), CLEAR], metavar="MODE")
    censor.add_argument(
        "protocol",
        nargs="?",
        metavar="PROTOCOL",
        help=f"{', '.join(TRANSPORTS)}, or a lab service: {', '.join(SERVICES.values())}",
    )
    censor.add_argument("--port", type=int, help="only this port")
    censor.add_argument("--lab", metavar="NAME", help="the lab namespace, when several run")
    censor.add_argument("--icmp", choices=ICMP_ERRORS, help="reject: the ICMP error to answer")
    censor.add_argument("--percent", type=float, help="loss: share of packets dropped (30)")
    censor.add_argument("--rate", type=float, help="throttle: bytes per second each way (2048)")
    censor.add_argument("--burst", type=float, help="throttle: bytes allowed at once (2048)")
    censor.add_argument("--ms", type=float, help="delay: milliseconds each way (500)")
    censor.add_argument(
        "--jitter", type=float, help="delay: up to this many milliseconds more, at random (0)"
    )
    censor.add_argument("--bytes", type=float, help="cut: each flow after this many bytes")
    censor.add_argument("--seconds", type=float, help="cut: each flow after this many seconds")
    censor.set_defaults(func=run_censor)
    return parser


def run_censor(args: argparse.Namespace) -> int:
    try:
        namespace = find_lab(args.lab)
        censor = Censor(namespace)
        if args.mode == CLEAR:
            censor.clear()
            print(f"censor in {namespace.name}: cleared")
            return EXIT_OK
        policy = build_policy(args, namespace)
        censor.enforce(policy)
    except (ConfigError, CensorError) as exc:
        print(f"vpnwatch lab censor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LabError as exc:
        print(f"vpnwatch lab censor: {exc}", file=sys.stderr)
        return EXIT_LAB
    print(f"censor in {namespace.name}: {describe(policy)}")
    return EXIT_OK


def find_lab(name: str | None) -> Namespace:
    """The running lab: the one there is, or the one named; ConfigError otherwise."""
    labs = lab_namespaces()
    if name is not None:
        if name not in labs:
            running = ", ".join(labs) or "none"
            raise ConfigError(f"no lab {name!r} is running (running: {running})", where="--lab")
        return _namespace(name)
    if not labs:
        raise ConfigError("no lab is running: start one with 'vpnwatch demo' (as root)")
    if len(labs) > 1:
        raise ConfigError(
            f"{len(labs)} labs are running ({', '.join(labs)}): choose one", where="--lab"
        )
    return _namespace(labs[0])


def lab_namespaces() -> list[str]:
    """Names of the lab namespaces on this host that still run something.

    A namespace whose servers are all gone is what a killed test run leaves behind, not a lab.
    """
    lines = run(["ip", "netns", "list"], check=False).splitlines()
    names = (line.split()[0] for line in lines if line.strip())
    return sorted(
        name
        for name in names
        if re.fullmatch(rf"{_PREFIX}\d+", name) and run(["ip", "netns", "pids", name], check=False)
    )


def _namespace(name: str) -> Namespace:
    return Namespace(slot=int(name.removeprefix(_PREFIX)))


def build_policy(args: argparse.Namespace, namespace: Namespace) -> Policy:
    """The policy the command line asks for, with the lab's services resolved to their ports."""
    mode = Mode(args.mode)
    params = {
        name: value
        for name in PARAMETERS.get(mode, {})
        if (value := getattr(args, name, None)) is not None
    }
    given = [
        f"--{name}"
        for name in ("icmp", "percent", "rate", "burst", "ms", "jitter", "bytes", "seconds")
    ]
    stray = [
        flag for flag in given if getattr(args, flag[2:]) is not None and flag[2:] not in params
    ]
    if stray:
        raise CensorError(f"{stray[0]} does not apply to {mode}")
    protocol: str | None = args.protocol
    if protocol is None or protocol in TRANSPORTS:
        return Policy.build(mode, [Flow(protocol, args.port)], **params)
    if mode == Mode.DPI and protocol == "anyconnect":
        # An SSL VPN is blocked by its TLS ClientHello on the gateway's port, as firewalls do.
        return Policy.build(mode, _service_flows(namespace, protocol, args.port), ["tls"], **params)
    if mode in (Mode.DPI, Mode.DROP_DATA):
        recognised = ALL_SIGNATURES if mode == Mode.DPI else SIGNATURES
        signature = next((each for each in recognised if each == protocol), None)
        if signature is None:
            what = "traffic" if mode == Mode.DPI else "data"
            raise CensorError(f"{mode} recognises {', '.join(recognised)} {what}, not {protocol}")
        return Policy.build(mode, [Flow(None, args.port)], [signature], **params)
    return Policy.build(mode, _service_flows(namespace, protocol, args.port), **params)


def _service_flows(namespace: Namespace, service: str, port: int | None) -> list[Flow]:
    """The flows a lab service listens on (only ``port`` if given); CensorError if none."""
    services = lab_services(namespace)
    flows = [flow for flow in services.get(service, []) if port in (None, flow.port)]
    if not flows:
        known = ", ".join(sorted(services)) or "nothing"
        raise CensorError(f"no {service} server listens in {namespace.name} (it serves: {known})")
    return flows


def lab_services(namespace: Namespace) -> dict[str, list[Flow]]:
    """What the lab serves to the monitor: service name → (transport, port) flows."""
    services: dict[str, list[Flow]] = {}
    for line in namespace.exec(["ss", "-H", "-tulnp"]).splitlines():
        columns = line.split()
        process = _SS_PROCESS.search(line)
        if len(columns) < 5 or process is None or columns[0] not in TRANSPORTS:
            continue
        address, _, port = columns[4].rpartition(":")
        service = SERVICES.get(process.group(1))
        if service is None or address.startswith(("127.", "[::1]")):
            continue  # not a lab server, or one only the namespace itself can reach
        flow = Flow(columns[0], int(port))
        if flow not in services.setdefault(service, []):
            services[service].append(flow)
    return services


def describe(policy: Policy) -> str:
    """One line: the mode, its parameters and the flows it applies to."""
    flows = ", ".join(
        f"{flow.transport or 'tcp+udp'}{'' if flow.port is None else f'/{flow.port}'}"
        for flow in policy.flows
    )
    params = " ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in policy.params.items()
    )
    what = (
        f"{policy.mode} {'+'.join(policy.signatures)}"
        if policy.mode in (Mode.DPI, Mode.DROP_DATA)
        else str(policy.mode)
    )
    return " ".join(part for part in (what, params, f"on {flows}") if part)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lab`` on its own (``python -m vpnwatch.lab.cli censor drop``), as tests do."""
    parser = argparse.ArgumentParser(prog="vpnwatch")
    add_lab_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
