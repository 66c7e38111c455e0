"""What the initiator offers in its SA payloads, and what it accepts back.

Two proposals each for the IKE SA and the child SA: AES-GCM-16 (256 and 128 bits), and AES-CBC
(256 and 128) with HMAC-SHA2-256/384/512; PRF-HMAC-SHA2 and the target's DH groups for IKE.
A responder's answer must be one proposal made only of transforms we offered, one of each type.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2 import transforms as t

_ENCR_NAMES = {t.ENCR_AES_CBC: "aes{}", t.ENCR_AES_GCM_16: "aes{}gcm16"}
_PRF_NAMES = {5: "prfsha256", 6: "prfsha384", 7: "prfsha512"}
_INTEG_NAMES = {12: "sha256", 13: "sha384", 14: "sha512"}
_GROUP_NAMES = {14: "modp2048", 19: "ecp256", 20: "ecp384", 31: "x25519"}
_KEY_SIZES = (256, 128)


def _encryption(aead: bool) -> tuple[p.Transform, ...]:
    encr = t.ENCR_AES_GCM_16 if aead else t.ENCR_AES_CBC
    return tuple((t.ENCR, encr, bits) for bits in _KEY_SIZES)


def _integrity(aead: bool) -> tuple[p.Transform, ...]:
    return () if aead else tuple((t.INTEG, i, None) for i in t.INTEG_HMAC_SHA2)


def ike_proposals(groups: tuple[int, ...]) -> list[p.Proposal]:
    """The IKE SA's proposals; the first group is the one whose key IKE_SA_INIT carries."""
    prfs = tuple((t.PRF, i, None) for i in t.PRF_HMAC_SHA2)
    dh = tuple((t.DH, g, None) for g in groups)
    return [
        p.Proposal(number, p.PROTO_IKE, b"", (*_encryption(aead), *prfs, *_integrity(aead), *dh))
        for number, aead in ((1, True), (2, False))
    ]


def esp_proposals(spi: bytes) -> list[p.Proposal]:
    """The child SA's proposals, with our inbound SPI; no extended sequence numbers."""
    return [
        p.Proposal(
            number, p.PROTO_ESP, spi, (*_encryption(aead), *_integrity(aead), (t.ESN, 0, None))
        )
        for number, aead in ((1, True), (2, False))
    ]


@dataclass(frozen=True, slots=True)
class Chosen:
    """A responder's choice, checked: the cipher suite, and for IKE the PRF and group."""

    proposal: p.Proposal
    suite: t.Suite
    prf: t.Prf | None
    group: int | None

    @property
    def name(self) -> str:
        """strongSwan's name for it: ``aes256gcm16-prfsha256-ecp256``."""
        parts = []
        for kind, ident, bits in self.proposal.transforms:
            if kind == t.ENCR:
                parts.append(_ENCR_NAMES.get(ident, f"encr{ident}").format(bits or ""))
            elif kind == t.INTEG:
                parts.append(_INTEG_NAMES.get(ident, f"integ{ident}"))
            elif kind == t.PRF:
                parts.append(_PRF_NAMES.get(ident, f"prf{ident}"))
            elif kind == t.DH:
                parts.append(_GROUP_NAMES.get(ident, f"group{ident}"))
        return "-".join(parts)


def chosen(answer: list[p.Proposal], offered: list[p.Proposal]) -> Chosen | None:
    """The responder's one proposal if it picks from ours, one transform of each type; else None."""
    if len(answer) != 1:
        return None
    [proposal] = answer
    ours = {transform for mine in offered for transform in mine.transforms}
    kinds = [kind for kind, _, _ in proposal.transforms]
    if (
        proposal.protocol != offered[0].protocol
        or len(kinds) != len(set(kinds))
        or not set(proposal.transforms) <= ours
    ):
        return None
    encr, integ = proposal.chosen(t.ENCR), proposal.chosen(t.INTEG)
    if encr is None or encr[2] is None or (encr[1] == t.ENCR_AES_GCM_16) == (integ is not None):
        return None
    prf, group = proposal.chosen(t.PRF), proposal.chosen(t.DH)
    if proposal.protocol == p.PROTO_IKE and (prf is None or group is None):
        return None
    return Chosen(
        proposal,
        t.Suite(encr[1], encr[2], integ[1] if integ else None),
        t.Prf(prf[1]) if prf else None,
        group[1] if group else None,
    )
