"""The IKEv2 probe's machine: IKE_SA_INIT, IKE_AUTH (PSK, certificates, EAP-MSCHAPv2), an ESP
echo through the child SA, and an INFORMATIONAL delete.

Stages: ``ike_sa_init`` (the responder chose one of our proposals and sent its key exchange),
``ike_auth`` (its AUTH payload verified and the child SA was accepted), and ``data`` when an echo
address is configured (an ICMP echo reply came back inside ESP that authenticated).

What the responder says before keys exist (IKE_SA_INIT's notifies) is unauthenticated: anyone on
the path can forge it. INVALID_KE_PAYLOAD and COOKIE are acted on, once each, as RFC 7296
requires; an error such as NO_PROPOSAL_CHOSEN only colours the timeout, so that a forged one cannot
end a probe. Everything after IKE_SA_INIT is inside the SK payload and counts only once it
decrypts and authenticates with the keys both sides derived.

ESP travels in UDP (RFC 3948), since an unprivileged socket cannot send IP protocol 50. So, as
strongSwan's ``encap = yes`` does, the initiator's NAT_DETECTION_SOURCE_IP never matches, the
responder sees a NAT, and both move to UDP 4500 after IKE_SA_INIT: the machine then emits
:class:`~vpnwatch.protocols.machine.Redirected` and holds IKE_AUTH until the driver has moved.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import struct
from dataclasses import dataclass, field
from enum import Enum, auto

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from vpnwatch.protocols.ikev2 import authentication as a
from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2 import transforms as t
from vpnwatch.protocols.ikev2.esp import EspSa
from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.mschapv2 import CHALLENGE as MS_CHALLENGE
from vpnwatch.protocols.ikev2.mschapv2 import (
    CHALLENGE_SIZE,
    EAP_FAILURE,
    EAP_IDENTITY,
    EAP_MSCHAPV2,
    EAP_NAK,
    EAP_REQUEST,
    EAP_RESPONSE,
    EAP_SUCCESS,
    MsChapV2Peer,
    eap_packet,
    mschapv2_packet,
)
from vpnwatch.protocols.ikev2.mschapv2 import FAILURE as MS_FAILURE
from vpnwatch.protocols.ikev2.mschapv2 import RESPONSE as MS_RESPONSE
from vpnwatch.protocols.ikev2.mschapv2 import SUCCESS as MS_SUCCESS
from vpnwatch.protocols.ip import Echo, echo_request, parse
from vpnwatch.protocols.machine import Failed, MachineBase, Redirected, StageCompleted
from vpnwatch.result import Failure

IKE_PORT = 500
NAT_T_PORT = 4500
NONCE_SIZE = 32
#: strongSwan's retransmission: 4 s, then each wait 1.8 times the last.
RETRANSMIT_FIRST = 4.0
RETRANSMIT_FACTOR = 1.8
#: An echo through the tunnel is sent again every second, as ping does.
ECHO_INTERVAL = 1.0
ECHO_PAYLOAD = b"vpnwatch ikev2 echo"
#: How often IKE_SA_INIT is sent again on INVALID_KE_PAYLOAD or COOKIE before giving up.
MAX_INIT_RETRIES = 3
#: EAP rounds a login may take (identity, challenge, success) with room to spare.
MAX_EAP_ROUNDS = 6

#: Child SA errors the responder sends once it has authenticated: the IKE SA exists, the child
#: does not. A configuration mismatch, so ``protocol``.
_CHILD_ERRORS = {
    p.NO_PROPOSAL_CHOSEN,
    p.TS_UNACCEPTABLE,
    36,  # INTERNAL_ADDRESS_FAILURE
    37,  # FAILED_CP_REQUIRED
    34,  # SINGLE_PAIR_REQUIRED
    39,  # INVALID_SELECTORS
}

#: Traffic selectors for everything: the responder narrows them to what it allows.
_ANY_IPV4 = (ipaddress.IPv4Address(0), ipaddress.IPv4Address(2**32 - 1))
_ENCR_NAMES = {t.ENCR_AES_CBC: "aes{}", t.ENCR_AES_GCM_16: "aes{}gcm16"}
_PRF_NAMES = {5: "prfsha256", 6: "prfsha384", 7: "prfsha512"}
_INTEG_NAMES = {12: "sha256", 13: "sha384", 14: "sha512"}
_GROUP_NAMES = {14: "modp2048", 19: "ecp256", 20: "ecp384", 31: "x25519"}


def _ike_transforms(groups: tuple[int, ...], aead: bool) -> tuple[p.Transform, ...]:
    encr: list[p.Transform] = (
        [(t.ENCR, t.ENCR_AES_GCM_16, 256), (t.ENCR, t.ENCR_AES_GCM_16, 128)]
        if aead
        else [(t.ENCR, t.ENCR_AES_CBC, 256), (t.ENCR, t.ENCR_AES_CBC, 128)]
    )
    integ: list[p.Transform] = [] if aead else [(t.INTEG, i, None) for i in (12, 13, 14)]
    prfs: list[p.Transform] = [(t.PRF, i, None) for i in (5, 6, 7)]
    return (*encr, *prfs, *integ, *((t.DH, g, None) for g in groups))


def _esp_transforms(aead: bool) -> tuple[p.Transform, ...]:
    if aead:
        return (
            (t.ENCR, t.ENCR_AES_GCM_16, 256),
            (t.ENCR, t.ENCR_AES_GCM_16, 128),
            (t.ESN, 0, None),
        )
    return (
        (t.ENCR, t.ENCR_AES_CBC, 256),
        (t.ENCR, t.ENCR_AES_CBC, 128),
        *((t.INTEG, i, None) for i in (12, 13, 14)),
        (t.ESN, 0, None),
    )


def suite_name(proposal: p.Proposal) -> str:
    """strongSwan's name for a chosen proposal: ``aes256gcm16-prfsha256-ecp256``."""
    parts = []
    for kind, ident, bits in proposal.transforms:
        if kind == t.ENCR:
            parts.append(_ENCR_NAMES.get(ident, f"encr{ident}").format(bits or ""))
        elif kind == t.INTEG:
            parts.append(_INTEG_NAMES.get(ident, f"integ{ident}"))
        elif kind == t.PRF:
            parts.append(_PRF_NAMES.get(ident, f"prf{ident}"))
        elif kind == t.DH:
            parts.append(_GROUP_NAMES.get(ident, f"group{ident}"))
    return "-".join(parts)


@dataclass(frozen=True, slots=True)
class LocalCertificate:
    """Our own certificate and key, when we authenticate with a signature."""

    certificate: x509.Certificate
    key: PrivateKeyTypes = field(repr=False)


@dataclass(frozen=True, slots=True)
class IkeSettings:
    """What one probe needs: identities, credentials, algorithms and the echo destination."""

    local_id: Identity
    remote_id: Identity | None = None
    #: How we authenticate: a shared key, our certificate, or EAP-MSCHAPv2 (username, password).
    psk: bytes | None = field(default=None, repr=False)
    certificate: LocalCertificate | None = None
    eap: tuple[str, str] | None = field(default=None, repr=False)
    #: How the responder must authenticate: ``pubkey`` (a certificate from ``cas``) or ``psk``.
    remote_auth: str = "pubkey"
    cas: tuple[x509.Certificate, ...] = ()
    groups: tuple[int, ...] = (19, 20, 31, 14)
    #: An address behind the gateway that answers ICMP echo; None to stop at ``ike_auth``.
    echo: ipaddress.IPv4Address | None = None
    #: The responder's address when it is known (an IP literal), for NAT_DETECTION_DESTINATION_IP.
    responder: tuple[str, int] | None = None
    #: Whether the conversation starts on UDP 4500 (the target's port is 4500).
    start_encapsulated: bool = False
    #: Keep the SA up once ``ike_auth`` completes, for a tunnel test that follows over the child
    #: SA; whoever runs it sends :meth:`IkeInitiator.goodbye` at its end. Needs an inner address.
    hold_sa: bool = False


class _State(Enum):
    INIT = auto()
    AUTH = auto()
    ECHO = auto()
    DONE = auto()


class IkeInitiator(MachineBase):
    """One IKEv2 probe of a responder, on the shared machine contract."""

    def __init__(
        self,
        settings: IkeSettings,
        *,
        wall_time: float,
        random: t.Random = os.urandom,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.stages = ("ike_sa_init", "ike_auth", *(("data",) if settings.echo else ()))
        self._random = random
        self._wall_time = wall_time
        self._state = _State.INIT
        self._encapsulated = settings.start_encapsulated
        self._spi_i = random(8)
        self._spi_r = bytes(8)
        self._nonce_i = random(NONCE_SIZE)
        self._groups = tuple(settings.groups)
        self._kex = t.key_exchange(self._groups[0], random)
        self._cookie = b""
        self._init_retries = 0
        self._message_id = 0
        self._init_request = b""
        self._init_response = b""
        self._nonce_r = b""
        self._keys: t.IkeKeys | None = None
        self._ike_proposal: p.Proposal | None = None
        self._child_spi = random(4)
        self._eap: MsChapV2Peer | None = None
        self._eap_rounds = 0
        self._responder_proof = ""
        self._idr = b""
        self._esp: EspSa | None = None
        self._inner: ipaddress.IPv4Address | None = None
        self._child_name = ""
        self._echo_id = 0
        # Retransmission of the request in flight (its datagram, when, and the next wait).
        self._pending = b""
        self._due: float | None = None
        self._wait = RETRANSMIT_FIRST
        self._held = False  # IKE_AUTH waits until the driver has moved to 4500
        self._deleted = False
        # What unauthenticated input has said, to colour a timeout.
        self._init_error = ""
        self._noise = ""

    # --- contract ---

    def start(self, now: float) -> None:
        super().start(now)
        self._send_init(now)

    def timer(self) -> float | None:
        return None if self.finished else self._due

    def handle_timer(self, now: float) -> None:
        if self.finished or self._due is None or now < self._due:
            return
        if self._held:
            self._held = False
            self._transmit(self._pending, now)
            return
        self._send(self._pending)
        if self._state is _State.ECHO:
            self._due = now + ECHO_INTERVAL
        else:
            self._due = now + self._wait
            self._wait *= RETRANSMIT_FACTOR

    def timed_out(self) -> Failed:
        if self._state is _State.INIT and self._init_error:
            return Failed(
                Failure.PROTOCOL, f"the responder answered IKE_SA_INIT with {self._init_error}"
            )
        if self._state is _State.INIT and self._noise:
            return Failed(Failure.PROTOCOL, f"only {self._noise} came back")
        if self._state is _State.ECHO:
            return Failed(
                Failure.TIMEOUT, f"no echo reply from {self.settings.echo} through the child SA"
            )
        what = "IKE_SA_INIT" if self._state is _State.INIT else "IKE_AUTH"
        return Failed(Failure.TIMEOUT, f"no valid answer to {what}")

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if self._encapsulated:
            if data == b"\xff":  # NAT-T keepalive
                return
            if not data.startswith(p.NON_ESP_MARKER):
                self._receive_esp(data, now)
                return
            data = data[len(p.NON_ESP_MARKER) :]
        try:
            header = p.parse_header(data)
        except p.MalformedMessage as exc:
            self._noise = f"a datagram that is not IKEv2 ({exc})"
            return
        if header.spi_i != self._spi_i or not header.flags & p.FLAG_RESPONSE:
            self._noise = "an IKE message for another SA"
            return
        if header.message_id != self._message_id:
            return  # a late answer to a retransmission
        try:
            if self._state is _State.INIT and header.exchange == p.IKE_SA_INIT:
                self._on_init_response(header, data, now)
            elif self._state in (_State.AUTH, _State.ECHO) and header.spi_r == self._spi_r:
                self._on_protected(header, data, now)
        except p.MalformedMessage as exc:
            if self._state is _State.INIT:
                self._noise = f"a malformed IKE_SA_INIT response ({exc})"
            else:
                self._fail(Failure.PROTOCOL, f"malformed authenticated reply: {exc}")

    # --- sending ---

    def _transmit(self, message: bytes, now: float) -> None:
        """Send a request and arm its retransmission."""
        if self._encapsulated:
            message = p.NON_ESP_MARKER + message
        self._pending = message
        self._send(message)
        self._wait = RETRANSMIT_FIRST
        self._due = now + self._wait
        self._wait *= RETRANSMIT_FACTOR

    def _message(self, exchange: int, payloads: list[tuple[int, bytes]]) -> bytes:
        body = p.encode_payloads(payloads)
        header = p.Header(
            self._spi_i,
            self._spi_r,
            payloads[0][0] if payloads else p.NO_NEXT,
            exchange,
            p.FLAG_INITIATOR,
            self._message_id,
            p.HEADER_SIZE + len(body),
        )
        return header.encode() + body

    def _protected(self, exchange: int, payloads: list[tuple[int, bytes]]) -> bytes:
        """A request whose payloads travel inside the SK payload."""
        assert self._keys is not None
        keys = self._keys.initiator
        inner = p.encode_payloads(payloads)
        plain = t.pad(inner, keys.cipher.block if keys.cipher.aead else t.AES_BLOCK)
        sealed_size = keys.cipher.iv_size + len(plain) + keys.cipher.icv_size
        length = p.HEADER_SIZE + p.PAYLOAD_HEADER.size + sealed_size
        header = p.Header(
            self._spi_i, self._spi_r, p.SK, exchange, p.FLAG_INITIATOR, self._message_id, length
        ).encode()
        sk_header = p.PAYLOAD_HEADER.pack(
            payloads[0][0] if payloads else p.NO_NEXT, 0, p.PAYLOAD_HEADER.size + sealed_size
        )
        aad = header + sk_header
        return aad + keys.seal(aad, plain, self._random(keys.cipher.iv_size))

    def _nat_hash(self, address: bytes, port: int) -> bytes:
        """NAT_DETECTION_*_IP: SHA-1(SPIi | SPIr | IP | port), as RFC 7296 2.23 defines it."""
        data = self._spi_i + bytes(8) + address + struct.pack("!H", port)
        return hashlib.sha1(data).digest()  # noqa: S324 - the RFC's hash, not a security one

    def _send_init(self, now: float) -> None:
        settings = self.settings
        proposals = [
            p.Proposal(1, p.PROTO_IKE, b"", _ike_transforms(self._groups, aead=True)),
            p.Proposal(2, p.PROTO_IKE, b"", _ike_transforms(self._groups, aead=False)),
        ]
        # The responder's own address when the target names one; a name resolves in the driver.
        host, port = settings.responder or ("0.0.0.0", IKE_PORT)  # noqa: S104 - not a bind
        destination = self._nat_hash(ipaddress.ip_address(host).packed, port)
        payloads: list[tuple[int, bytes]] = []
        if self._cookie:
            payloads.append((p.NOTIFY, p.encode_notify(p.COOKIE, self._cookie)))
        payloads += [
            (p.SA, p.encode_sa(proposals)),
            (p.KE, p.encode_ke(self._kex.group, self._kex.public)),
            (p.NONCE, self._nonce_i),
            # 0.0.0.0:0 is nobody's source: the responder sees a NAT and both move to UDP 4500.
            (p.NOTIFY, p.encode_notify(p.NAT_DETECTION_SOURCE_IP, self._nat_hash(bytes(4), 0))),
            (p.NOTIFY, p.encode_notify(p.NAT_DETECTION_DESTINATION_IP, destination)),
            (p.NOTIFY, p.encode_notify(p.SIGNATURE_HASH_ALGORITHMS, a.SIGNATURE_HASHES)),
        ]
        self._init_request = self._message(p.IKE_SA_INIT, payloads)
        self._transmit(self._init_request, now)

    # --- IKE_SA_INIT ---

    def _on_init_response(self, header: p.Header, data: bytes, now: float) -> None:
        payloads = p.parse_payloads(header.next_payload, data[p.HEADER_SIZE :])
        notifies = [p.parse_notify(x.body) for x in payloads if x.kind == p.NOTIFY]
        by_kind = {x.kind: x.body for x in payloads}
        for kind, notify_data in notifies:
            if kind == p.COOKIE and self._init_retries < MAX_INIT_RETRIES:
                self._init_retries += 1
                self._cookie = notify_data
                self._send_init(now)
                return
            if kind == p.INVALID_KE_PAYLOAD and len(notify_data) == 2:
                group = struct.unpack("!H", notify_data)[0]
                if (
                    group in self._groups
                    and group != self._kex.group
                    and self._init_retries < MAX_INIT_RETRIES
                ):
                    self._init_retries += 1
                    self._kex = t.key_exchange(group, self._random)
                    self._send_init(now)
                    return
                self._init_error = (
                    f"INVALID_KE_PAYLOAD asking for group {group}, which we do not offer"
                )
                return
            if kind < p.ERROR_LIMIT:
                self._init_error = p.notify_name(kind)
                return
        if p.SA not in by_kind or p.KE not in by_kind or p.NONCE not in by_kind:
            self._noise = "an IKE_SA_INIT response without SA, KE and nonce"
            return
        proposals = p.parse_sa(by_kind[p.SA])
        if len(proposals) != 1 or not self._offered(proposals[0], p.PROTO_IKE):
            self._noise = "an IKE_SA_INIT response choosing a proposal we did not offer"
            return
        [proposal] = proposals
        group, public = p.parse_ke(by_kind[p.KE])
        nonce_r = by_kind[p.NONCE]
        chosen_group = proposal.chosen(t.DH)
        if (
            chosen_group is None
            or group != self._kex.group
            or chosen_group[1] != group
            or not 16 <= len(nonce_r) <= 256
        ):
            self._noise = "an IKE_SA_INIT response with a key exchange we did not ask for"
            return
        try:
            shared = self._kex.shared_secret(public)
        except t.InvalidPublicValue as exc:
            self._noise = f"an IKE_SA_INIT response with an invalid public value ({exc})"
            return
        if (
            not any(kind == p.NAT_DETECTION_SOURCE_IP for kind, _ in notifies)
            and not self._encapsulated
        ):
            self._init_error = "no NAT_DETECTION payloads: the responder cannot carry ESP in UDP"
            return
        prf = t.Prf(self._required(proposal, t.PRF))
        suite = self._suite(proposal)
        self._spi_r = header.spi_r
        self._nonce_r = nonce_r
        self._init_response = data
        self._ike_proposal = proposal
        self._keys = t.derive_ike_keys(
            prf,
            suite,
            shared,
            nonces=(self._nonce_i, nonce_r),
            spis=(self._spi_i, self._spi_r),
        )
        self._state = _State.AUTH
        self._message_id = 1
        self._emit(StageCompleted("ike_sa_init"))
        request = self._auth_request()
        if self._encapsulated:
            self._transmit(request, now)
            return
        # Move to UDP 4500 first; IKE_AUTH leaves once the driver has (the next timer, at once).
        self._encapsulated = True
        self._emit(Redirected(NAT_T_PORT))
        self._pending, self._held, self._due = request, True, now

    def _offered(self, proposal: p.Proposal, protocol: int) -> bool:
        if proposal.protocol != protocol:
            return False
        ours = _ike_transforms(self._groups, True) + _ike_transforms(self._groups, False)
        if protocol == p.PROTO_ESP:
            ours = _esp_transforms(True) + _esp_transforms(False)
        kinds = [kind for kind, _, _ in proposal.transforms]
        if len(kinds) != len(set(kinds)) or t.ENCR not in kinds:
            return False
        try:
            self._suite(proposal)
        except p.MalformedMessage:
            return False
        return all(transform in ours for transform in proposal.transforms)

    @staticmethod
    def _required(proposal: p.Proposal, kind: int) -> int:
        chosen = proposal.chosen(kind)
        if chosen is None:
            raise p.MalformedMessage(f"proposal without transform type {kind}")
        return chosen[1]

    @staticmethod
    def _suite(proposal: p.Proposal) -> t.Suite:
        encr = proposal.chosen(t.ENCR)
        integ = proposal.chosen(t.INTEG)
        if encr is None or encr[2] not in (128, 256):
            raise p.MalformedMessage("proposal without a usable encryption transform")
        suite = t.Suite(encr[1], encr[2], integ[1] if integ else None)
        if suite.aead == (integ is not None):
            raise p.MalformedMessage("integrity transform does not fit the encryption transform")
        return suite

    # --- IKE_AUTH ---

    def _auth_request(self) -> bytes:
        settings = self.settings
        assert self._keys is not None
        id_i = settings.local_id.payload()
        payloads: list[tuple[int, bytes]] = [(p.IDI, id_i)]
        if settings.certificate is not None:
            der = settings.certificate.certificate.public_bytes(Encoding.DER)
            payloads.append((p.CERT, bytes([p.CERT_X509_SIGNATURE]) + der))
        if settings.cas:
            hashes_ = b"".join(a.ca_key_hash(ca) for ca in settings.cas)
            payloads.append((p.CERTREQ, bytes([p.CERT_X509_SIGNATURE]) + hashes_))
        if settings.remote_id is not None:
            payloads.append((p.IDR, settings.remote_id.payload()))
        octets = a.signed_octets(
            self._keys.prf, self._init_request, self._nonce_r, self._keys.pi, id_i
        )
        if settings.psk is not None:
            payloads.append(
                (
                    p.AUTH,
                    p.encode_auth(a.SHARED_KEY, a.psk_auth(self._keys.prf, settings.psk, octets)),
                )
            )
        elif settings.certificate is not None:
            payloads.append(
                (
                    p.AUTH,
                    p.encode_auth(a.DIGITAL_SIGNATURE, _sign(settings.certificate.key, octets)),
                )
            )
        elif settings.eap is not None:
            username, password = settings.eap
            self._eap = MsChapV2Peer(username, password, self._random(16))
        payloads += [
            (p.CP, p.encode_cp_request([p.INTERNAL_IP4_ADDRESS])),
            (p.SA, p.encode_sa([
                p.Proposal(1, p.PROTO_ESP, self._child_spi, _esp_transforms(True)),
                p.Proposal(2, p.PROTO_ESP, self._child_spi, _esp_transforms(False)),
            ])),
            (p.TSI, p.encode_ts([_ANY_IPV4])),
            (p.TSR, p.encode_ts([_ANY_IPV4])),
        ]  # fmt: skip
        return self._protected(p.IKE_AUTH, payloads)

    def _on_protected(self, header: p.Header, data: bytes, now: float) -> None:
        assert self._keys is not None
        payloads = p.parse_payloads(header.next_payload, data[p.HEADER_SIZE :])
        if not payloads or payloads[-1].kind != p.SK:
            return  # unprotected: anyone could have sent it
        sk = payloads[-1]
        aad_end = len(data) - len(sk.body)
        try:
            plain = self._keys.responder.open(data[:aad_end], sk.body)
        except t.DecryptError:
            return  # not from the responder holding our keys: noise
        if not plain or plain[-1] + 1 > len(plain):
            raise p.MalformedMessage("SK padding longer than its payload")
        inner = p.parse_payloads(sk.next_kind, plain[: -1 - plain[-1]])
        if header.exchange == p.INFORMATIONAL:
            return
        if self._state is _State.AUTH and header.exchange == p.IKE_AUTH:
            self._on_auth_response(data, inner, now)

    def _on_auth_response(self, message: bytes, inner: list[p.Payload], now: float) -> None:
        by_kind: dict[int, bytes] = {}
        for payload in inner:
            by_kind.setdefault(payload.kind, payload.body)
        notified = (p.parse_notify(x.body)[0] for x in inner if x.kind == p.NOTIFY)
        errors = [kind for kind in notified if kind < p.ERROR_LIMIT]
        if p.AUTHENTICATION_FAILED in errors:
            self._fail(Failure.AUTH, "the responder answered AUTHENTICATION_FAILED")
            return
        if p.AUTH in by_kind and not self._responder_proof:
            certs = [x.body for x in inner if x.kind == p.CERT]
            if not self._verify_responder(by_kind, certs):
                return
        elif (
            p.AUTH in by_kind
            and self._eap is not None
            and not self._verify_eap_auth(by_kind[p.AUTH])
        ):
            return
        if p.EAP in by_kind:
            self._on_eap(by_kind[p.EAP], now)
            return
        if p.AUTH not in by_kind:
            detail = ", ".join(p.notify_name(e) for e in errors) or "neither AUTH nor EAP"
            self._fail(Failure.PROTOCOL, f"the responder answered IKE_AUTH with {detail}")
            return
        child_errors = [e for e in errors if e in _CHILD_ERRORS]
        if child_errors or p.SA not in by_kind:
            names = ", ".join(p.notify_name(e) for e in child_errors) or "no child SA"
            self._delete(now)
            self._fail(Failure.PROTOCOL, f"authenticated, but the child SA was refused: {names}")
            return
        self._accept_child(by_kind, now)

    def _verify_responder(self, by_kind: dict[int, bytes], certs: list[bytes]) -> bool:
        """Check the responder's IDr and AUTH; fail the probe and return False when they do not."""
        assert self._keys is not None
        settings = self.settings
        if p.IDR not in by_kind:
            self._fail(Failure.PROTOCOL, "the responder's IKE_AUTH has AUTH but no IDr")
            return False
        self._idr = by_kind[p.IDR]
        id_type, id_data = p.parse_id(self._idr)
        octets = self._responder_octets()
        method, auth_data = p.parse_auth(by_kind[p.AUTH])
        expected = settings.remote_id
        if expected is not None and (id_type, id_data) != (expected.id_type, expected.data):
            self._fail(Failure.AUTH, f"the responder identified as another than {expected.text}")
            return False
        if settings.remote_auth == "psk":
            if method != a.SHARED_KEY or settings.psk is None:
                self._fail(
                    Failure.AUTH, f"the responder used AUTH method {method}, not a shared key"
                )
                return False
            if not _equal(a.psk_auth(self._keys.prf, settings.psk, octets), auth_data):
                self._fail(Failure.AUTH, "the responder's AUTH does not verify with the shared key")
                return False
            self._responder_proof = "a shared key"
            return True
        if method == a.SHARED_KEY:
            self._fail(Failure.AUTH, "the responder used a shared key where a certificate was due")
            return False
        try:
            chain = [
                x509.load_der_x509_certificate(data)
                for encoding, data in map(p.parse_cert, certs)
                if encoding == p.CERT_X509_SIGNATURE
            ]
        except ValueError:
            self._fail(Failure.PROTOCOL, "the responder's CERT payload is not an X.509 certificate")
            return False
        try:
            cert = a.verify_chain(chain, settings.cas, self._wall_time)
            identity = expected or Identity(id_type, id_data, "its IDr")
            if not a.names_identity(cert, identity):
                subject = cert.subject.rfc4514_string()
                raise a.CertificateError(
                    f"the certificate of {subject} does not name {identity.text}"
                )
        except a.CertificateError as exc:
            self._fail(Failure.TLS_CERT, str(exc))
            return False
        try:
            a.verify_signature(cert, method, auth_data, octets)
        except a.AuthError as exc:
            self._fail(Failure.AUTH, str(exc))
            return False
        self._responder_proof = f"certificate {cert.subject.rfc4514_string()}"
        return True

    def _responder_octets(self) -> bytes:
        assert self._keys is not None
        return a.signed_octets(
            self._keys.prf, self._init_response, self._nonce_i, self._keys.pr, self._idr
        )

    def _on_eap(self, packet: bytes, now: float) -> None:
        if self._eap is None:
            self._fail(
                Failure.PROTOCOL, "the responder started EAP, which this target does not use"
            )
            return
        self._eap_rounds += 1
        if len(packet) < 4 or self._eap_rounds > MAX_EAP_ROUNDS:
            self._fail(Failure.PROTOCOL, "a malformed or endless EAP exchange")
            return
        code, identifier = packet[0], packet[1]
        if code == EAP_SUCCESS:
            self._send_eap_auth(now)
            return
        if code == EAP_FAILURE:
            self._fail(Failure.AUTH, "EAP failure: the responder refused the login")
            return
        if code != EAP_REQUEST or len(packet) < 5:
            self._fail(Failure.PROTOCOL, f"unexpected EAP code {code}")
            return
        kind, data = packet[4], packet[5:]
        opcode = data[0] if data else None
        if kind == EAP_IDENTITY:
            reply = eap_packet(EAP_RESPONSE, identifier, EAP_IDENTITY, self._eap.username.encode())
        elif kind != EAP_MSCHAPV2:
            reply = eap_packet(EAP_RESPONSE, identifier, EAP_NAK, bytes([EAP_MSCHAPV2]))
        elif opcode == MS_CHALLENGE and len(data) >= 21 and data[4] == CHALLENGE_SIZE:
            value = self._eap.respond(data[5:21])
            name = self._eap.username.encode()
            ms = mschapv2_packet(MS_RESPONSE, data[1], bytes([len(value)]) + value + name)
            reply = eap_packet(EAP_RESPONSE, identifier, EAP_MSCHAPV2, ms)
        elif opcode == MS_SUCCESS:
            if not self._eap.verify_success(data[4:]):
                self._fail(
                    Failure.AUTH, "the responder's MSCHAPv2 success does not prove the password"
                )
                return
            reply = eap_packet(EAP_RESPONSE, identifier, EAP_MSCHAPV2, bytes([MS_SUCCESS]))
        elif opcode == MS_FAILURE:
            # Acknowledged as a real client does, so that the gateway ends the half-open SA now.
            reply = eap_packet(EAP_RESPONSE, identifier, EAP_MSCHAPV2, bytes([MS_FAILURE]))
            self._message_id += 1
            self._transmit(self._protected(p.IKE_AUTH, [(p.EAP, reply)]), now)
            self._fail(Failure.AUTH, f"EAP-MSCHAPv2 refused the login ({_ms_error(data[4:])})")
            return
        else:
            self._fail(Failure.PROTOCOL, "a malformed EAP-MSCHAPv2 request")
            return
        self._message_id += 1
        self._transmit(self._protected(p.IKE_AUTH, [(p.EAP, reply)]), now)

    def _send_eap_auth(self, now: float) -> None:
        """After EAP success: AUTH keyed with the MSK over our IKE_SA_INIT request."""
        assert self._keys is not None and self._eap is not None
        id_i = self.settings.local_id.payload()
        octets = a.signed_octets(
            self._keys.prf, self._init_request, self._nonce_r, self._keys.pi, id_i
        )
        auth = a.psk_auth(self._keys.prf, self._eap.msk(), octets)
        self._message_id += 1
        payloads = [(p.AUTH, p.encode_auth(a.SHARED_KEY, auth))]
        self._transmit(self._protected(p.IKE_AUTH, payloads), now)

    def _verify_eap_auth(self, auth_body: bytes) -> bool:
        """The responder's second AUTH, keyed with the MSK: it took part in the same EAP."""
        assert self._keys is not None and self._eap is not None
        method, data = p.parse_auth(auth_body)
        expected = a.psk_auth(self._keys.prf, self._eap.msk(), self._responder_octets())
        if method != a.SHARED_KEY or not _equal(expected, data):
            self._fail(Failure.AUTH, "the responder's AUTH does not verify with the EAP key")
            return False
        self._responder_proof += " and EAP-MSCHAPv2"
        return True

    # --- the child SA ---

    def _accept_child(self, by_kind: dict[int, bytes], now: float) -> None:
        assert self._keys is not None and self._ike_proposal is not None
        proposals = p.parse_sa(by_kind[p.SA])
        if len(proposals) != 1 or not self._offered(proposals[0], p.PROTO_ESP):
            self._delete(now)
            self._fail(Failure.PROTOCOL, "the child SA accepted a proposal we did not offer")
            return
        [proposal] = proposals
        if len(proposal.spi) != 4:
            raise p.MalformedMessage("ESP SPI is not 4 bytes")
        inner = None
        if p.CP in by_kind:
            cfg, attributes = p.parse_cp(by_kind[p.CP])
            for kind, value in attributes:
                if cfg == p.CFG_REPLY and kind == p.INTERNAL_IP4_ADDRESS and len(value) >= 4:
                    inner = ipaddress.IPv4Address(value[:4])
                    break
        self._child_name = suite_name(proposal)
        outbound, inbound = t.derive_child_keys(
            self._keys, self._suite(proposal), self._nonce_i, self._nonce_r
        )
        self._esp = EspSa(outbound, inbound, proposal.spi, self._child_spi, self._random)
        self._inner = inner
        self._emit(StageCompleted("ike_auth"))
        echo, hold = self.settings.echo, self.settings.hold_sa
        if echo is None and not hold:
            self._delete(now)
            self._complete(self._summary())
            return
        if inner is None:
            self._delete(now)
            self._fail(Failure.PROTOCOL, "the responder assigned no inner address to send from")
            return
        if echo is None:
            self._state, self._due = _State.DONE, None
            self._complete(self._summary())
            return
        self._state = _State.ECHO
        self._echo_id = int.from_bytes(self._random(2), "big")
        self._pending = self._esp.seal(self._echo_packet())
        self._send(self._pending)
        self._due = now + ECHO_INTERVAL

    def _echo_packet(self) -> bytes:
        assert self._inner is not None and self.settings.echo is not None
        return echo_request(self._inner, self.settings.echo, self._echo_id, 1, ECHO_PAYLOAD)

    def _receive_esp(self, data: bytes, now: float) -> None:
        if self._state is not _State.ECHO or self._esp is None:
            return
        assert self._inner is not None and self.settings.echo is not None
        try:
            packet = self._esp.open(data)
        except t.DecryptError:
            return
        wanted = Echo(self.settings.echo, self._inner, self._echo_id, 1, ECHO_PAYLOAD, reply=True)
        if parse(packet) == wanted:
            self._emit(StageCompleted("data"))
            self._delete(now)
            self._complete(f"{self._summary()}; echo from {self.settings.echo} came back")

    def _delete(self, now: float) -> None:
        """Send the delete now; nothing more is due."""
        self._send(self.goodbye())
        self._state = _State.DONE
        self._due = None

    def goodbye(self) -> bytes:
        """An INFORMATIONAL delete of the IKE SA (and so its child): the responder keeps nothing.

        Not retransmitted and its answer not awaited: the probe is over either way.
        """
        self._message_id += 1
        self._deleted = True
        message = self._protected(p.INFORMATIONAL, [(p.DELETE, p.encode_delete(p.PROTO_IKE))])
        return p.NON_ESP_MARKER + message if self._encapsulated else message

    @property
    def holds_sa(self) -> bool:
        """Whether an authenticated SA is up that no delete has ended yet."""
        return self._esp is not None and not self._deleted

    @property
    def child_sa(self) -> EspSa | None:
        """The child SA once ``ike_auth`` completed."""
        return self._esp

    @property
    def inner_address(self) -> ipaddress.IPv4Address | None:
        """The address the gateway assigned us, once ``ike_auth`` completed."""
        return self._inner

    def _summary(self) -> str:
        assert self._ike_proposal is not None
        return (
            f"IKE {suite_name(self._ike_proposal)}, responder proved {self._responder_proof}; "
            f"child SA ESP {self._child_name}" + (f" for {self._inner}" if self._inner else "")
        )


def _equal(left: bytes, right: bytes) -> bool:
    return hmac.compare_digest(left, right)


def _ms_error(message: bytes) -> str:
    """The ``E=691`` of an MSCHAPv2 failure message, or a short note that there is none."""
    for part in message.decode("ascii", "replace").split():
        if part.startswith("E=") and part[2:].isdigit():
            return f"E={part[2:]}"
    return "no error code"


def _sign(key: PrivateKeyTypes, octets: bytes) -> bytes:
    """An RFC 7427 AUTH of ours: AlgorithmIdentifier, then the signature, SHA-256 where hashed."""
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = bytes.fromhex("300d06092a864886f70d01010b0500")  # sha256WithRSAEncryption
        signature = key.sign(octets, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
        signature = key.sign(octets, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = bytes.fromhex("300506032b6570")
        signature = key.sign(octets)
    else:
        raise TypeError(f"cannot sign IKE AUTH with a {type(key).__name__}")
    return bytes([len(algorithm)]) + algorithm + signature
