"""Stream layers a proxy's bytes travel through: TLS, WebSocket, Mux.Cool, simple-obfs' disguises.

A layer is sans-IO like the machines above it: payload in from above (:meth:`Layer.send`), bytes
for the layer below out (:meth:`Layer.data_to_send`), bytes from below in (:meth:`Layer.receive`,
which returns the payload for above). :class:`~vpnwatch.protocols.layers.stack.LayerStack` chains
them, so that a Shadowsocks machine runs unchanged over ``obfs=tls`` or WebSocket-over-TLS.
"""
