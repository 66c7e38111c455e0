"""IKE identities (RFC 7296 3.5) as users write them in strongSwan and Apple profiles.

``cryptography.x509`` is imported only for a distinguished name: loading a PSK target stays cheap.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpnwatch.protocols.ikev2 import payloads as p

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True, slots=True)
class Identity:
    """An IKE identity: its ID type and data, and how users write it."""

    id_type: int
    data: bytes
    text: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        """As strongSwan reads identities: an address, ``user@domain``, ``@fqdn``, ``@#hex``,
        a distinguished name (``C=CH, O=Org, CN=name``), else an FQDN."""
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            kind = p.ID_IPV4_ADDR if address.version == 4 else p.ID_IPV6_ADDR
            return cls(kind, address.packed, text)
        if text.startswith("@#"):
            return cls(p.ID_KEY_ID, bytes.fromhex(text[2:]), text)
        if text.startswith("@"):
            return cls(p.ID_FQDN, text[1:].encode(), text)
        if "@" in text:
            return cls(p.ID_RFC822_ADDR, text.encode(), text)
        if "=" in text:
            return cls(p.ID_DER_ASN1_DN, distinguished_name(text).public_bytes(), text)
        return cls(p.ID_FQDN, text.encode(), text)

    def payload(self) -> bytes:
        return p.encode_id(self.id_type, self.data)


#: DN attribute names strongSwan writes → their OIDs.
_DN_ATTRIBUTES = {
    "C": "2.5.4.6",
    "ST": "2.5.4.8",
    "L": "2.5.4.7",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "CN": "2.5.4.3",
    "E": "1.2.840.113549.1.9.1",
    "DC": "0.9.2342.19200300.100.1.25",
    "SN": "2.5.4.4",
    "SERIALNUMBER": "2.5.4.5",
}


def distinguished_name(text: str) -> x509.Name:
    """A DN written as strongSwan writes it: ``C=CH, O=Org, CN=name``, in DER order."""
    from cryptography import x509  # noqa: PLC0415 - see the module's docstring

    attributes = []
    for part in (piece.strip() for piece in text.split(",")):
        key, sep, value = part.partition("=")
        oid = _DN_ATTRIBUTES.get(key.strip().upper())
        if not sep or oid is None or not value.strip():
            raise ValueError(
                f"distinguished name part {key.strip()!r} is not one of {sorted(_DN_ATTRIBUTES)}"
            )
        attributes.append(
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(x509.ObjectIdentifier(oid), value.strip())]
            )
        )
    return x509.Name(attributes)
