"""IKEv2 (RFC 7296) from the initiator's side, without I/O: a road-warrior client's handshake.

:mod:`.payloads` reads and writes messages, :mod:`.encrypted` the SK payload, :mod:`.proposals`
what we offer and accept, :mod:`.transforms` the algorithms and key derivation,
:mod:`.identities` and :mod:`.authentication` the AUTH payloads and certificate checks,
:mod:`.mschapv2` EAP-MSCHAPv2, :mod:`.esp` the child SA's packets, :mod:`.initiator` the probe's
machine and :mod:`.tunnel` the child SA as a tunnel test's data plane.
"""
