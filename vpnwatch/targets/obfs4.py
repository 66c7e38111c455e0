"""An obfs4 bridge to probe, with what its Tor bridge line says about it.

A bridge line's ``cert=`` packs the bridge's 20-byte node id and its 32-byte X25519 identity key
into base64 without padding. Both are public: anyone holding the bridge line has them, and so
the target holds no secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, model_validator

from vpnwatch.targets.base import PublicKey32, TargetBase

NODE_ID_LENGTH = 20
PUBLIC_KEY_LENGTH = 32
CERT_LENGTH = NODE_ID_LENGTH + PUBLIC_KEY_LENGTH
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")

#: What the probe does once the handshake is verified: nothing; speak Tor's link protocol to the
#: relay behind the bridge, prove it holds the fingerprint's identity and open a circuit ("tor");
#: or check that bytes sent through the obfs4 session come back (for backends that echo).
DataCheck = Literal["none", "tor", "echo"]


def decode_cert(text: str) -> tuple[bytes, bytes]:
    """The node id and identity public key in a bridge line's ``cert=`` value.

    Raises ValueError with a message fit for the user (the value is public, but never repeated).
    """
    unpadded = text.strip().rstrip("=")
    try:
        raw = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("cert is not valid base64") from None
    if len(raw) != CERT_LENGTH:
        raise ValueError(
            f"cert decodes to {len(raw)} bytes, not {CERT_LENGTH} "
            f"(a {NODE_ID_LENGTH}-byte node id and a {PUBLIC_KEY_LENGTH}-byte public key)"
        )
    return raw[:NODE_ID_LENGTH], raw[NODE_ID_LENGTH:]


def encode_cert(node_id: bytes, public_key: bytes) -> str:
    """The ``cert=`` value obfs4proxy publishes for these keys."""
    return base64.b64encode(node_id + public_key).decode().rstrip("=")


def _node_id(value: object) -> object:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise ValueError("node_id is not hexadecimal") from None
    if isinstance(value, bytes) and len(value) != NODE_ID_LENGTH:
        raise ValueError(f"node_id is {len(value)} bytes, not {NODE_ID_LENGTH}")
    return value


def _fingerprint(value: str) -> str:
    if not _FINGERPRINT.match(value):
        raise ValueError("a fingerprint is 40 hexadecimal digits")
    return value.upper()


#: A bridge's 20-byte node id, written in hexadecimal.
NodeId = Annotated[bytes, BeforeValidator(_node_id), PlainSerializer(bytes.hex, return_type=str)]
#: A Tor relay fingerprint: the SHA-1 of its identity key, 40 hexadecimal digits.
Fingerprint = Annotated[str, AfterValidator(_fingerprint)]


class Obfs4Target(TargetBase):
    """One obfs4 bridge: where it listens and the keys its bridge line publishes.

    Configuration may give ``cert`` (as in the bridge line) instead of ``node_id`` and
    ``public_key``. ``iat_mode`` is recorded as the bridge line states it; it shapes how the
    server times its writes and needs nothing from a client that only handshakes and echoes.
    """

    protocol: Literal["obfs4"] = "obfs4"
    node_id: NodeId
    public_key: PublicKey32
    iat_mode: Literal[0, 1, 2] = 0
    fingerprint: Fingerprint | None = None
    data: DataCheck = "none"

    @model_validator(mode="before")
    @classmethod
    def _cert_to_keys(cls, values: Any) -> Any:
        if not isinstance(values, dict) or "cert" not in values:
            return values
        if "node_id" in values or "public_key" in values:
            raise ValueError("give either cert or node_id and public_key, not both")
        values = dict(values)
        values["node_id"], values["public_key"] = decode_cert(str(values.pop("cert")))
        return values

    @model_validator(mode="after")
    def _tor_needs_fingerprint(self) -> Obfs4Target:
        if self.data == "tor" and self.fingerprint is None:
            raise ValueError("data: tor checks the relay's identity, so it needs a fingerprint")
        return self

    @property
    def transport(self) -> str:
        return "tcp"

    @property
    def cert(self) -> str:
        return encode_cert(self.node_id, self.public_key)
