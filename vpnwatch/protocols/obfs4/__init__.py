"""obfs4, sans I/O: the client handshake (Elligator 2, ntor) and the framed data phase.

A driver sends ``ClientHandshake.data_to_send()``, feeds what arrives to ``receive_data`` and
asks ``next_event`` until the handshake completes, then carries on with an ``Obfs4Session``.
Anything the peer does wrong raises an :class:`Obfs4Error`; nothing else escapes.
"""

from vpnwatch.protocols.obfs4.errors import (
    MalformedFrame,
    MalformedHandshake,
    Obfs4Error,
    ServerAuthFailed,
)
from vpnwatch.protocols.obfs4.events import NEED_DATA, DataReceived, HelloAccepted, NeedData
from vpnwatch.protocols.obfs4.handshake import ClientHandshake
from vpnwatch.protocols.obfs4.session import Obfs4Session

__all__ = [
    "NEED_DATA",
    "ClientHandshake",
    "DataReceived",
    "HelloAccepted",
    "MalformedFrame",
    "MalformedHandshake",
    "NeedData",
    "Obfs4Error",
    "Obfs4Session",
    "ServerAuthFailed",
]
