"""Tor's link protocol, sans I/O: enough of it to prove a relay's identity and open a circuit.

:class:`TorChannelClient` runs TLS and then :class:`TorLinkClient` (cells) over any byte stream;
the obfs4 probe runs it inside the obfs4 session to check the relay a bridge fronts.
"""

from vpnwatch.protocols.tor.channel import TorChannelClient
from vpnwatch.protocols.tor.link import TorLinkClient

__all__ = ["TorChannelClient", "TorLinkClient"]
