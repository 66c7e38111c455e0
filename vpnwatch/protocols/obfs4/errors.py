"""What can go wrong on the peer's side of an obfs4 connection.

Every malformed or hostile input raises one of these, never anything else, so that a driver can
classify the outcome without guessing.
"""

from __future__ import annotations


class Obfs4Error(Exception):
    """The peer's bytes break the obfs4 protocol."""


class MalformedHandshake(Obfs4Error):
    """The server's hello has no mark where one must be, a MAC that does not verify, or a bad key.

    The mark and MAC are keyed with the bridge's public key and node id, which every user of the
    bridge line knows; failing them says the peer is not speaking obfs4 correctly, not that it is
    an impostor.
    """


class ServerAuthFailed(Obfs4Error):
    """The ntor AUTH tag is wrong: the server does not hold the bridge's private key."""


class MalformedFrame(Obfs4Error):
    """A data frame's length is out of range, its secretbox does not open, or its packet is bad."""
