"""IKEv2 (RFC 7296) from the initiator's side, without I/O: a road-warrior client's handshake.

:mod:`.payloads` reads and writes messages, :mod:`.transforms` holds the negotiated algorithms and
key derivation, :mod:`.authentication` the AUTH payloads and certificate checks, :mod:`.mschapv2`
EAP-MSCHAPv2, :mod:`.esp` the child SA's packets, and :mod:`.initiator` the probe's machine.
"""
