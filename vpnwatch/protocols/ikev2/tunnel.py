"""IKEv2's data plane for tunnel tests: the child SA as a :mod:`vpnwatch.protocols.tunnel` Tunnel.

A tunnel test over IKEv2 is the initiator, holding its SA up once ``ike_auth`` completed, chained
to a :class:`~vpnwatch.protocols.tunnel.TunnelTest` whose echoes travel in ESP over UDP 4500
(:class:`EspTunnel`), and ended by :class:`Goodbye` with the IKE SA's delete, whatever the test
concluded, so the gateway keeps nothing.
"""

from __future__ import annotations

from vpnwatch.protocols.ikev2.esp import EspSa
from vpnwatch.protocols.ikev2.initiator import IkeInitiator
from vpnwatch.protocols.ikev2.payloads import NON_ESP_MARKER
from vpnwatch.protocols.ikev2.transforms import DecryptError
from vpnwatch.protocols.machine import Completed, Failed, MachineBase
from vpnwatch.protocols.tunnel import Chain


class EspTunnel:
    """The child SA: inner packets in ESP, and back out of ESP that authenticates."""

    def __init__(self, child: EspSa) -> None:
        self._child = child

    def seal(self, packet: bytes) -> list[bytes]:
        return [self._child.seal(packet)]

    def open(self, data: bytes) -> list[bytes]:
        """The inner packet of an ESP datagram; IKE messages and NAT-T keepalives are not ours."""
        if data.startswith(NON_ESP_MARKER) or data == b"\xff":
            return []
        try:
            return [self._child.open(data)]
        except DecryptError:
            return []

    def flush(self) -> list[bytes]:
        return []


class Goodbye(MachineBase):
    """A chain over an IKE SA that sends the SA's delete once the chain completed or failed."""

    def __init__(self, chain: Chain, initiator: IkeInitiator) -> None:
        super().__init__()
        self._chain = chain
        self._initiator = initiator
        self.stages = chain.stages
        self.input_budget = chain.input_budget

    def start(self, now: float) -> None:
        super().start(now)
        self._chain.start(now)
        self._pass_on()

    def receive(self, data: bytes, now: float) -> None:
        if not self.finished:
            self._chain.receive(data, now)
            self._pass_on()

    def data_to_send(self, now: float) -> list[bytes]:
        # The chain's own datagrams first: the delete must follow the last echo, not pass it.
        return self._chain.data_to_send(now) + super().data_to_send(now)

    def timer(self) -> float | None:
        return None if self.finished else self._chain.timer()

    def handle_timer(self, now: float) -> None:
        if not self.finished:
            self._chain.handle_timer(now)
            self._pass_on()

    def timed_out(self) -> Failed:
        return self._chain.timed_out()

    def _pass_on(self) -> None:
        self.input_budget = self._chain.input_budget
        while not self.finished and (event := self._chain.next_event()) is not None:
            if isinstance(event, (Completed, Failed)) and self._initiator.holds_sa:
                self._send(self._initiator.goodbye())
            if isinstance(event, Completed):
                self._complete(event.detail)
            elif isinstance(event, Failed):
                self._fail(event.failure, event.detail)
            else:
                self._emit(event)
