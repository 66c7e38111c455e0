"""The layer contract and the stack that chains layers between a machine and the wire."""

from __future__ import annotations

from collections.abc import Sequence

from vpnwatch.protocols.machine import Event, StageCompleted
from vpnwatch.result import Failure


def starts_like(data: bytes | bytearray, prefix: bytes) -> bool:
    """Whether ``data`` so far agrees with ``prefix``: it may still turn out to start with it."""
    n = min(len(data), len(prefix))
    return bytes(data[:n]) == prefix[:n]


class LayerFailed(Exception):
    """The peer broke a layer's protocol: the probe fails with ``failure``."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


class Layer:
    """One layer. Subclasses queue bytes for below with :meth:`_down` and hold payload until ready.

    ``stages`` are what the layer proves (``tls``: a verified certificate; ``websocket``: the
    upgrade accepted with the key we sent); a disguise that proves nothing has none.
    """

    stages: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._below = bytearray()
        self._held = bytearray()
        self._events: list[Event] = []
        self.ready = False
        #: The peer ended this layer's stream (a WebSocket close, a Mux.Cool End) while the
        #: connection below may stay open: nothing more will come through it.
        self.ended = False

    def open(self) -> None:
        """Queue the layer's own opening bytes, if it speaks first."""

    def send(self, payload: bytes) -> None:
        """Payload from above: wrapped now, or held until the layer is ready."""
        if self.ready:
            self._wrap(payload)
        else:
            self._held += payload

    def receive(self, data: bytes) -> bytes:
        """Bytes from below; the payload they carry for above. Raises LayerFailed."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        out, self._below = bytes(self._below), bytearray()
        return out

    def events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _wrap(self, payload: bytes) -> None:
        raise NotImplementedError

    def _down(self, data: bytes) -> None:
        self._below += data

    def _become_ready(self, stage: str | None = None) -> None:
        """The layer may carry payload now: release what it held."""
        self.ready = True
        if stage is not None:
            self._events.append(StageCompleted(stage))
        if self._held:
            held, self._held = bytes(self._held), bytearray()
            self._wrap(held)


class LayerStack:
    """Layers from the top (nearest the machine) to the bottom (on the wire); may be empty."""

    def __init__(self, layers: Sequence[Layer] = ()) -> None:
        self._layers = list(layers)
        self._wire = bytearray()
        #: What the layers prove, in the order they prove it: the bottom one first.
        self.stages = tuple(stage for layer in reversed(self._layers) for stage in layer.stages)

    def open(self) -> None:
        for layer in reversed(self._layers):
            layer.open()
        self._flush()

    def send(self, payload: bytes) -> None:
        if self._layers:
            self._layers[0].send(payload)
            self._flush()
        else:
            self._wire += payload

    def receive(self, data: bytes) -> bytes:
        """Bytes off the wire → payload for the machine. Raises LayerFailed."""
        for layer in reversed(self._layers):
            data = layer.receive(data)
            self._flush()
        return data

    def data_to_send(self) -> bytes:
        out, self._wire = bytes(self._wire), bytearray()
        return out

    @property
    def ended(self) -> bool:
        """Whether a layer's stream ended: the machine's answer is all there will be."""
        return any(layer.ended for layer in self._layers)

    def events(self) -> list[Event]:
        return [event for layer in reversed(self._layers) for event in layer.events()]

    def _flush(self) -> None:
        """Pass each layer's output down, top to bottom, so one pass reaches the wire."""
        for index, layer in enumerate(self._layers):
            out = layer.data_to_send()
            if not out:
                continue
            if index + 1 < len(self._layers):
                self._layers[index + 1].send(out)
            else:
                self._wire += out
