"""OpenVPN's data plane for the tunnel test: echoes through the data channel of a kept session.

A tunnel test chains the handshake (an :class:`OpenVPNClient` told to keep the session) to
:class:`~vpnwatch.protocols.tunnel.TunnelTest`, which needs a
:class:`~vpnwatch.protocols.tunnel.Tunnel`: :class:`OpenVPNTunnel` seals inner IP packets into
P_DATA_V2 (or V1) packets with the client's :class:`DataChannel`, framed over TCP, and opens the
server's; control packets that still arrive go back to the client, which acknowledges them. Its
echoes go from the pushed ``ifconfig`` address to the server's tunnel address
(:func:`tunnel_addresses`). When the test ends, :class:`SayGoodbye` has the client send EXIT so
that the server frees the session at once, as the handshake probe does. :func:`tunnel_test`
puts it all together.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

from vpnwatch.protocols.machine import Completed, Event, Failed, Machine, MachineBase
from vpnwatch.protocols.openvpn.client import OpenVPNClient
from vpnwatch.protocols.openvpn.packets import PacketError, frame_tcp
from vpnwatch.protocols.openvpn.push import PushReply
from vpnwatch.protocols.tunnel import Chain, TunnelTest
from vpnwatch.quality import TrainPlan
from vpnwatch.result import Failure

_HOST = "255.255.255.255"


class TunnelAddressError(ValueError):
    """The PUSH_REPLY gives no address to test the tunnel from or to."""


def tunnel_addresses(
    reply: PushReply,
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address | None]:
    """(our tunnel address, the server's if the push names it); raises TunnelAddressError
    without an ``ifconfig``.

    ``topology subnet`` pushes ``ifconfig <ours> <netmask>`` and the server's address as
    ``route-gateway``. ``net30`` pushes ``ifconfig <ours> <remote end>``, where the remote end is
    a virtual address no one answers, and a host route to the server's own address; ``p2p``
    pushes the server's address as the remote end.
    """
    ifconfig = reply.ifconfig
    if ifconfig is None:
        raise TunnelAddressError("the server pushed no ifconfig: no tunnel address to test from")
    try:
        local = ipaddress.IPv4Address(ifconfig[0])
        gateway = reply.route_gateway
        if gateway is not None and gateway != "dhcp":
            return local, ipaddress.IPv4Address(gateway)
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{ifconfig[1]}")
            return local, None  # a netmask: subnet without a gateway
        except ValueError:
            remote = ipaddress.IPv4Address(ifconfig[1])
    except ValueError:
        raise TunnelAddressError("the pushed tunnel addresses are not IPv4 addresses") from None
    if reply.topology == "net30":
        hosts = [route[0] for route in reply.values("route") if route[1:2] in ((), (_HOST,))]
        return local, _first_address(hosts)
    return local, remote


def tunnel_address6(reply: PushReply) -> ipaddress.IPv6Address:
    """Our IPv6 tunnel address (``ifconfig-ipv6 <ours>/<bits> <remote>``), for echoes to an IPv6
    ``ping``; raises TunnelAddressError without one."""
    ifconfig = reply.ifconfig_ipv6
    if ifconfig is None:
        raise TunnelAddressError("the server pushed no ifconfig-ipv6: no IPv6 address to ping from")
    try:
        return ipaddress.IPv6Interface(ifconfig[0]).ip
    except ValueError:
        raise TunnelAddressError("the pushed ifconfig-ipv6 is not an IPv6 address") from None


def _first_address(texts: list[str]) -> ipaddress.IPv4Address | None:
    for text in texts:
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            continue
    return None


class OpenVPNTunnel:
    """The :class:`~vpnwatch.protocols.tunnel.Tunnel` of a handshake that kept its session."""

    def __init__(self, client: OpenVPNClient, *, tcp: bool) -> None:
        if client.data_channel is None:
            raise ValueError("the handshake did not key a data channel")
        self.client = client
        self.channel = client.data_channel
        self._tcp = tcp
        #: Data packets that failed the data channel's checks (tag, HMAC, replay, framing).
        self.rejected = 0

    def seal(self, packet: bytes) -> list[bytes]:
        wire = self.channel.seal(packet)
        return [frame_tcp(wire) if self._tcp else wire]

    def open(self, data: bytes) -> list[bytes]:
        inner = []
        for packet in self.client.after_handshake(data):
            try:
                inner.append(self.channel.open(packet))
            except PacketError:
                self.rejected += 1
        return inner

    def flush(self) -> list[bytes]:
        """Nothing: the control channel's ACKs go out with the handshake machine's own output."""
        return []


class SayGoodbye(MachineBase):
    """Runs ``machine`` and calls ``goodbye`` just before passing on how it ended.

    The chained handshake queues EXIT in ``goodbye``; its output is sent before the driver acts
    on the end, so the server hears it.
    """

    def __init__(self, machine: Machine, goodbye: Callable[[], None]) -> None:
        super().__init__()
        self.machine = machine
        self.stages = machine.stages
        self.input_budget = machine.input_budget
        self._goodbye = goodbye

    def start(self, now: float) -> None:
        super().start(now)
        self.machine.start(now)

    def receive(self, data: bytes, now: float) -> None:
        self.machine.receive(data, now)

    def data_to_send(self, now: float) -> list[bytes]:
        return self.machine.data_to_send(now)

    def timer(self) -> float | None:
        return self.machine.timer()

    def handle_timer(self, now: float) -> None:
        self.machine.handle_timer(now)

    def timed_out(self) -> Failed:
        return self.machine.timed_out()

    def next_event(self) -> Event | None:
        event = self.machine.next_event()
        if isinstance(event, Completed | Failed) and not self.finished:
            self.finished = True
            self._goodbye()
        return event


class FailsAtStart(MachineBase):
    """A probe that cannot go ahead: it fails at :meth:`start`, at the stage it could not reach,
    in one line like any other failure rather than crashing the worker."""

    def __init__(self, stages: tuple[str, ...], failure: Failure, detail: str) -> None:
        super().__init__()
        self.stages = stages
        self._failure = failure
        self._detail = detail

    def start(self, now: float) -> None:
        super().start(now)
        self._fail(self._failure, self._detail)

    def receive(self, data: bytes, now: float) -> None:
        """Nothing is read: the probe ended at :meth:`start`."""


def tunnel_test(
    handshake: OpenVPNClient,
    plan: TrainPlan,
    *,
    tcp: bool,
    ping: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Machine:
    """``handshake`` (keeping its session), then a :class:`TunnelTest` from the pushed ``ifconfig``
    address to the server's tunnel address (or ``ping``; from ``ifconfig-ipv6`` to an IPv6 one),
    then EXIT."""

    def echoes(done: Machine) -> Machine:
        assert isinstance(done, OpenVPNClient) and done.push_reply is not None
        local: ipaddress.IPv4Address | ipaddress.IPv6Address
        try:
            if isinstance(ping, ipaddress.IPv6Address):
                local, server = tunnel_address6(done.push_reply), None
            else:
                local, server = tunnel_addresses(done.push_reply)
        except TunnelAddressError as exc:
            return FailsAtStart(TunnelTest.stages, Failure.PROTOCOL, str(exc))
        destination = ping or server
        if destination is None:
            detail = "the server pushed no route-gateway to ping: give the target a ping address"
            return FailsAtStart(TunnelTest.stages, Failure.PROTOCOL, detail)
        test = TunnelTest(
            OpenVPNTunnel(done, tcp=tcp), local, destination, plan, random_bytes=random_bytes
        )
        return SayGoodbye(test, done.say_goodbye)

    return Chain(handshake, echoes, TunnelTest.stages)
