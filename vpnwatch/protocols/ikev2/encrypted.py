"""The Encrypted and Authenticated payload (SK, RFC 7296 3.14; RFC 5282 for AES-GCM).

Everything after IKE_SA_INIT travels inside it: the IKE header and the SK payload's own header are
authenticated with the payloads, which are padded, encrypted and followed by the ICV.
"""

from __future__ import annotations

from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2.transforms import DecryptError, DirectionKeys, pad


def seal(
    keys: DirectionKeys, header: p.Header, payloads: list[tuple[int, bytes]], iv: bytes
) -> bytes:
    """The whole message: ``header`` (its length filled in), then the SK payload around
    ``payloads``."""
    cipher = keys.cipher
    plain = pad(p.encode_payloads(payloads), cipher.block)
    sealed_size = cipher.iv_size + len(plain) + cipher.icv_size
    first = payloads[0][0] if payloads else p.NO_NEXT
    length = p.HEADER_SIZE + p.PAYLOAD_HEADER.size + sealed_size
    fields = (header.spi_i, header.spi_r, p.SK, header.exchange, header.flags, header.message_id)
    authenticated = p.Header(*fields, length).encode() + p.PAYLOAD_HEADER.pack(
        first, 0, p.PAYLOAD_HEADER.size + sealed_size
    )
    return authenticated + keys.seal(authenticated, plain, iv)


def open_(keys: DirectionKeys, header: p.Header, message: bytes) -> list[p.Payload] | None:
    """The payloads inside a message's SK payload; None when it has none or it does not decrypt
    and authenticate (anyone could have sent it). Raises MalformedMessage for bad padding."""
    payloads = p.parse_payloads(header.next_payload, message[p.HEADER_SIZE :])
    if not payloads or payloads[-1].kind != p.SK:
        return None
    sk = payloads[-1]
    try:
        plain = keys.open(message[: len(message) - len(sk.body)], sk.body)
    except DecryptError:
        return None
    if not plain or plain[-1] + 1 > len(plain):
        raise p.MalformedMessage("SK padding longer than its payload")
    return p.parse_payloads(sk.next_kind, plain[: -1 - plain[-1]])
