"""The IKEv2 probe's machine: IKE_SA_INIT, IKE_AUTH (PSK, certificates, EAP-MSCHAPv2), an ESP
echo through the child SA, and an INFORMATIONAL delete.

Stages: ``ike_sa_init`` (the responder chose one of our proposals and sent its key exchange),
``ike_auth`` (its AUTH payload verified and the child SA was accepted), and ``data`` when an echo
address is configured (an ICMP echo reply came back inside ESP that authenticated).

What the responder says before keys exist (IKE_SA_INIT's notifies) is unauthenticated: anyone on
the path can forge it. INVALID_KE_PAYLOAD and COOKIE are acted on, as RFC 7296 requires, a bounded
number of times; an error such as NO_PROPOSAL_CHOSEN only colours the timeout, so that a forged
one cannot end a probe. Everything after IKE_SA_INIT is inside the SK payload and counts only once
it decrypts and authenticates with the keys both sides derived.

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
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from vpnwatch.protocols.ikev2 import authentication as a
from vpnwatch.protocols.ikev2 import encrypted
from vpnwatch.protocols.ikev2 import payloads as p
from vpnwatch.protocols.ikev2 import transforms as t
from vpnwatch.protocols.ikev2.esp import EspSa
from vpnwatch.protocols.ikev2.identities import Identity
from vpnwatch.protocols.ikev2.mschapv2 import (
    EapMsChapV2Client,
    EapRefused,
    EapReply,
    EapSucceeded,
)
from vpnwatch.protocols.ikev2.proposals import Chosen, chosen, esp_proposals, ike_proposals
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
NAT_T_KEEPALIVE = b"\xff"

#: Child SA errors the responder sends once it has authenticated: the IKE SA exists, the child
#: does not. A configuration mismatch, so ``protocol``.
_CHILD_ERRORS = {
    p.NO_PROPOSAL_CHOSEN,
    p.TS_UNACCEPTABLE,
    p.INTERNAL_ADDRESS_FAILURE,
    p.FAILED_CP_REQUIRED,
    p.SINGLE_PAIR_REQUIRED,
    p.INVALID_SELECTORS,
}
#: Traffic selectors for everything: the responder narrows them to what it allows.
_ANY_IPV4 = (ipaddress.IPv4Address(0), ipaddress.IPv4Address(2**32 - 1))
#: The failure each kind of refused proof is.
_PROOF_FAILURES: tuple[tuple[type[a.AuthError], Failure], ...] = (
    (a.MalformedProof, Failure.PROTOCOL),
    (a.CertificateError, Failure.TLS_CERT),
    (a.AuthError, Failure.AUTH),
)


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
    """One IKEv2 probe of a responder, on the shared machine contract.

    ``random`` draws, in order: the SPI, the nonce, the Diffie-Hellman key (again after an
    INVALID_KE_PAYLOAD), the child SA's SPI, then the MSCHAPv2 peer challenge, the IV of each
    encrypted message, the echo identifier and each ESP IV, as they are needed.
    """

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
        self._responder_check = a.ResponderCheck(
            settings.remote_id, settings.remote_auth, settings.psk, settings.cas, wall_time
        )
        self._state = _State.INIT
        self._encapsulated = settings.start_encapsulated
        self._spi_i = random(8)
        self._spi_r = bytes(8)
        self._nonce_i = random(NONCE_SIZE)
        self._kex = t.key_exchange(settings.groups[0], random)
        self._child_spi = random(4)
        self._cookie = b""
        self._init_retries = 0
        self._message_id = 0
        self._init_request = b""
        self._init_response = b""
        self._nonce_r = b""
        self._keys: t.IkeKeys | None = None
        self._ike: Chosen | None = None
        self._child: Chosen | None = None
        self._eap: EapMsChapV2Client | None = None
        self._eap_rounds = 0
        self._msk = b""
        self._responder_proof = ""
        self._idr = b""
        self._esp: EspSa | None = None
        self._inner: ipaddress.IPv4Address | None = None
        self._echo_id = 0
        # The request in flight: its datagram, when it is due again, and the next wait.
        self._pending = b""
        self._due: float | None = None
        self._wait = RETRANSMIT_FIRST
        self._held = False  # IKE_AUTH waits until the driver has moved to 4500
        self._deleted = False
        # What unauthenticated input said, to colour a timeout.
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
            said = f"the responder answered IKE_SA_INIT with {self._init_error}"
            return Failed(Failure.PROTOCOL, said)
        if self._state is _State.INIT and self._noise:
            return Failed(Failure.PROTOCOL, f"only {self._noise} came back")
        if self._state is _State.ECHO:
            missing = f"no echo reply from {self.settings.echo} through the child SA"
            return Failed(Failure.TIMEOUT, missing)
        what = "IKE_SA_INIT" if self._state is _State.INIT else "IKE_AUTH"
        return Failed(Failure.TIMEOUT, f"no valid answer to {what}")

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if self._encapsulated:
            if data == NAT_T_KEEPALIVE:
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
            elif (self._state, header.exchange, header.spi_r) == (
                _State.AUTH,
                p.IKE_AUTH,
                self._spi_r,
            ):
                self._on_auth_response(header, data, now)
        except p.MalformedMessage as exc:
            if self._state is _State.INIT:
                self._noise = f"a malformed IKE_SA_INIT response ({exc})"
            else:
                self._fail(Failure.PROTOCOL, f"malformed authenticated reply: {exc}")

    # --- what other machines need once ``ike_auth`` completed ---

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

    def _header(self, exchange: int, first: int, length: int = 0) -> p.Header:
        return p.Header(
            self._spi_i, self._spi_r, first, exchange, p.FLAG_INITIATOR, self._message_id, length
        )

    def _protected(self, exchange: int, payloads: list[tuple[int, bytes]]) -> bytes:
        """A request whose payloads travel inside the SK payload."""
        assert self._keys is not None
        keys = self._keys.initiator
        iv = self._random(keys.cipher.iv_size)
        return encrypted.seal(keys, self._header(exchange, p.SK), payloads, iv)

    def _nat_hash(self, address: bytes, port: int) -> bytes:
        """NAT_DETECTION_*_IP: SHA-1(SPIi | SPIr | IP | port), as RFC 7296 2.23 defines it."""
        data = self._spi_i + bytes(8) + address + struct.pack("!H", port)
        return hashlib.sha1(data).digest()  # noqa: S324 - the RFC's hash, not a security one

    def _send_init(self, now: float) -> None:
        # The responder's own address when the target names one; a name resolves in the driver.
        host, port = self.settings.responder or ("0.0.0.0", IKE_PORT)  # noqa: S104 - not a bind
        payloads: list[tuple[int, bytes]] = []
        if self._cookie:
            payloads.append((p.NOTIFY, p.encode_notify(p.COOKIE, self._cookie)))
        source = self._nat_hash(bytes(4), 0)  # nobody's source: the responder sees a NAT
        destination = self._nat_hash(ipaddress.ip_address(host).packed, port)
        payloads += [
            (p.SA, p.encode_sa(ike_proposals(self.settings.groups))),
            (p.KE, p.encode_ke(self._kex.group, self._kex.public)),
            (p.NONCE, self._nonce_i),
            (p.NOTIFY, p.encode_notify(p.NAT_DETECTION_SOURCE_IP, source)),
            (p.NOTIFY, p.encode_notify(p.NAT_DETECTION_DESTINATION_IP, destination)),
            (p.NOTIFY, p.encode_notify(p.SIGNATURE_HASH_ALGORITHMS, a.SIGNATURE_HASHES)),
        ]
        body = p.encode_payloads(payloads)
        header = self._header(p.IKE_SA_INIT, payloads[0][0], p.HEADER_SIZE + len(body))
        self._init_request = header.encode() + body
        self._transmit(self._init_request, now)

    # --- IKE_SA_INIT ---

    def _on_init_response(self, header: p.Header, data: bytes, now: float) -> None:
        payloads = p.parse_payloads(header.next_payload, data[p.HEADER_SIZE :])
        notifies = [p.parse_notify(x.body) for x in payloads if x.kind == p.NOTIFY]
        for kind, notify_data in notifies:
            if kind < p.ERROR_LIMIT or kind == p.COOKIE:
                self._on_init_notify(kind, notify_data, now)
                return
        by_kind = {x.kind: x.body for x in payloads}
        if p.SA not in by_kind or p.KE not in by_kind or p.NONCE not in by_kind:
            self._noise = "an IKE_SA_INIT response without SA, KE and nonce"
            return
        ike = chosen(p.parse_sa(by_kind[p.SA]), ike_proposals(self.settings.groups))
        group, public = p.parse_ke(by_kind[p.KE])
        nonce_r = by_kind[p.NONCE]
        if ike is None or ike.prf is None or group != self._kex.group or ike.group != group:
            self._noise = "an IKE_SA_INIT response choosing what we did not offer"
            return
        if not 16 <= len(nonce_r) <= 256:
            self._noise = f"an IKE_SA_INIT response with a nonce of {len(nonce_r)} bytes"
            return
        if not self._encapsulated and all(k != p.NAT_DETECTION_SOURCE_IP for k, _ in notifies):
            self._init_error = "no NAT_DETECTION payloads: the responder cannot carry ESP in UDP"
            return
        try:
            shared = self._kex.shared_secret(public)
        except t.InvalidPublicValue as exc:
            self._noise = f"an IKE_SA_INIT response with an invalid public value ({exc})"
            return
        self._spi_r, self._nonce_r, self._init_response, self._ike = (
            header.spi_r,
            nonce_r,
            data,
            ike,
        )
        self._keys = t.derive_ike_keys(
            ike.prf,
            ike.suite,
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

    def _on_init_notify(self, kind: int, data: bytes, now: float) -> None:
        """COOKIE and INVALID_KE_PAYLOAD start over as asked; other errors colour a timeout."""
        retry = self._init_retries < MAX_INIT_RETRIES
        if kind == p.COOKIE and retry:
            self._init_retries += 1
            self._cookie = data
            self._send_init(now)
        elif kind == p.INVALID_KE_PAYLOAD and len(data) == 2:
            group = struct.unpack("!H", data)[0]
            if group in self.settings.groups and group != self._kex.group and retry:
                self._init_retries += 1
                self._kex = t.key_exchange(group, self._random)
                self._send_init(now)
            else:
                self._init_error = f"INVALID_KE_PAYLOAD asking for group {group}, not one we offer"
        elif kind < p.ERROR_LIMIT:
            self._init_error = p.notify_name(kind)

    # --- IKE_AUTH ---

    def _our_octets(self) -> bytes:
        """What our AUTH signs: our IKE_SA_INIT request, the responder's nonce, prf(SK_pi, IDi)."""
        assert self._keys is not None
        id_i = self.settings.local_id.payload()
        return a.signed_octets(
            self._keys.prf, self._init_request, self._nonce_r, self._keys.pi, id_i
        )

    def _responder_octets(self) -> bytes:
        assert self._keys is not None
        return a.signed_octets(
            self._keys.prf, self._init_response, self._nonce_i, self._keys.pr, self._idr
        )

    def _auth_request(self) -> bytes:
        settings = self.settings
        assert self._keys is not None
        payloads: list[tuple[int, bytes]] = [(p.IDI, settings.local_id.payload())]
        if settings.certificate is not None:
            der = settings.certificate.certificate.public_bytes(Encoding.DER)
            payloads.append((p.CERT, bytes([p.CERT_X509_SIGNATURE]) + der))
        if settings.cas:
            hashes_ = b"".join(a.ca_key_hash(ca) for ca in settings.cas)
            payloads.append((p.CERTREQ, bytes([p.CERT_X509_SIGNATURE]) + hashes_))
        if settings.remote_id is not None:
            payloads.append((p.IDR, settings.remote_id.payload()))
        if settings.psk is not None:
            mac = a.psk_auth(self._keys.prf, settings.psk, self._our_octets())
            payloads.append((p.AUTH, p.encode_auth(a.SHARED_KEY, mac)))
        elif settings.certificate is not None:
            signature = a.sign(settings.certificate.key, self._our_octets())
            payloads.append((p.AUTH, p.encode_auth(a.DIGITAL_SIGNATURE, signature)))
        elif settings.eap is not None:  # no AUTH: the responder starts EAP
            username, password = settings.eap
            self._eap = EapMsChapV2Client(username, password, self._random(16))
        payloads += [
            (p.CP, p.encode_cp_request([p.INTERNAL_IP4_ADDRESS])),
            (p.SA, p.encode_sa(esp_proposals(self._child_spi))),
            (p.TSI, p.encode_ts([_ANY_IPV4])),
            (p.TSR, p.encode_ts([_ANY_IPV4])),
        ]
        return self._protected(p.IKE_AUTH, payloads)

    def _on_auth_response(self, header: p.Header, message: bytes, now: float) -> None:
        assert self._keys is not None
        inner = encrypted.open_(self._keys.responder, header, message)
        if inner is None:
            return  # not from the responder holding our keys: noise
        by_kind: dict[int, bytes] = {}
        for payload in inner:
            by_kind.setdefault(payload.kind, payload.body)
        notified = (p.parse_notify(x.body)[0] for x in inner if x.kind == p.NOTIFY)
        errors = [kind for kind in notified if kind < p.ERROR_LIMIT]
        if p.AUTHENTICATION_FAILED in errors:
            self._fail(Failure.AUTH, "the responder answered AUTHENTICATION_FAILED")
            return
        if p.AUTH in by_kind and not self._verify_auth(by_kind, inner):
            return
        if p.EAP in by_kind:
            self._on_eap(by_kind[p.EAP], now)
        elif p.AUTH not in by_kind:
            detail = ", ".join(p.notify_name(e) for e in errors) or "neither AUTH nor EAP"
            self._fail(Failure.PROTOCOL, f"the responder answered IKE_AUTH with {detail}")
        elif p.SA not in by_kind or any(e in _CHILD_ERRORS for e in errors):
            names = ", ".join(p.notify_name(e) for e in errors if e in _CHILD_ERRORS)
            self._delete()
            refused = names or "no child SA"
            self._fail(Failure.PROTOCOL, f"authenticated, but the child SA was refused: {refused}")
        else:
            self._accept_child(by_kind, now)

    def _verify_auth(self, by_kind: dict[int, bytes], inner: list[p.Payload]) -> bool:
        """The responder's AUTH: its signature or PSK first, then (after EAP) the MSK's. Fails the
        probe and returns False when it does not verify."""
        assert self._keys is not None
        if self._responder_proof:  # the second AUTH, keyed with EAP's MSK
            return self._verify_eap_auth(by_kind[p.AUTH])
        self._idr = by_kind.get(p.IDR, b"")
        certs = [x.body for x in inner if x.kind == p.CERT]
        try:
            self._responder_proof = a.check_responder(
                self._responder_check,
                self._keys.prf,
                idr=by_kind.get(p.IDR),
                auth=by_kind[p.AUTH],
                certs=certs,
                octets=self._responder_octets(),
            )
        except a.AuthError as exc:
            failure = next(f for kind, f in _PROOF_FAILURES if isinstance(exc, kind))
            self._fail(failure, str(exc))
            return False
        return True

    def _on_eap(self, packet: bytes, now: float) -> None:
        self._eap_rounds += 1
        if self._eap is None or self._eap_rounds > MAX_EAP_ROUNDS:
            self._fail(Failure.PROTOCOL, "an EAP exchange this target does not use, or endless")
            return
        step = self._eap.answer(packet)
        if isinstance(step, EapRefused):
            if step.packet is not None:  # acknowledged, so the gateway ends the half-open SA
                self._message_id += 1
                self._transmit(self._protected(p.IKE_AUTH, [(p.EAP, step.packet)]), now)
            self._fail(Failure.AUTH if step.refused_us else Failure.PROTOCOL, step.detail)
            return
        self._message_id += 1
        if isinstance(step, EapReply):
            self._transmit(self._protected(p.IKE_AUTH, [(p.EAP, step.packet)]), now)
        elif isinstance(step, EapSucceeded):
            assert self._keys is not None
            self._msk = step.msk
            mac = a.psk_auth(self._keys.prf, step.msk, self._our_octets())
            payloads = [(p.AUTH, p.encode_auth(a.SHARED_KEY, mac))]
            self._transmit(self._protected(p.IKE_AUTH, payloads), now)

    def _verify_eap_auth(self, auth_body: bytes) -> bool:
        """The responder's second AUTH, keyed with the MSK: it took part in the same EAP."""
        assert self._keys is not None
        method, data = p.parse_auth(auth_body)
        expected = a.psk_auth(self._keys.prf, self._msk, self._responder_octets())
        if method != a.SHARED_KEY or not hmac.compare_digest(expected, data):
            self._fail(Failure.AUTH, "the responder's AUTH does not verify with the EAP key")
            return False
        self._responder_proof += " and EAP-MSCHAPv2"
        return True

    # --- the child SA ---

    def _accept_child(self, by_kind: dict[int, bytes], now: float) -> None:
        assert self._keys is not None
        child = chosen(p.parse_sa(by_kind[p.SA]), esp_proposals(self._child_spi))
        if child is None or len(child.proposal.spi) != 4:
            self._delete()
            self._fail(Failure.PROTOCOL, "the child SA accepted a proposal we did not offer")
            return
        self._child = child
        if p.CP in by_kind:
            cfg, attributes = p.parse_cp(by_kind[p.CP])
            addresses = [v for k, v in attributes if k == p.INTERNAL_IP4_ADDRESS and len(v) >= 4]
            if cfg == p.CFG_REPLY and addresses:
                self._inner = ipaddress.IPv4Address(addresses[0][:4])
        outbound, inbound = t.derive_child_keys(
            self._keys, child.suite, self._nonce_i, self._nonce_r
        )
        self._esp = EspSa(outbound, inbound, child.proposal.spi, self._child_spi, self._random)
        self._emit(StageCompleted("ike_auth"))
        echo, hold = self.settings.echo, self.settings.hold_sa
        if echo is None and not hold:
            self._delete()
            self._complete(self._summary())
        elif self._inner is None:
            self._delete()
            self._fail(Failure.PROTOCOL, "the responder assigned no inner address to send from")
        elif echo is None:  # held for the tunnel test that follows
            self._state, self._due = _State.DONE, None
            self._complete(self._summary())
        else:
            self._state = _State.ECHO
            self._echo_id = int.from_bytes(self._random(2), "big")
            request = echo_request(self._inner, echo, self._echo_id, 1, ECHO_PAYLOAD)
            self._pending = self._esp.seal(request)
            self._send(self._pending)
            self._due = now + ECHO_INTERVAL

    def _receive_esp(self, data: bytes, now: float) -> None:
        echo = self.settings.echo
        if self._state is not _State.ECHO or self._esp is None or echo is None:
            return
        assert self._inner is not None
        try:
            packet = self._esp.open(data)
        except t.DecryptError:
            return
        if parse(packet) == Echo(echo, self._inner, self._echo_id, 1, ECHO_PAYLOAD, reply=True):
            self._emit(StageCompleted("data"))
            self._delete()
            self._complete(f"{self._summary()}; echo from {echo} came back")

    def _delete(self) -> None:
        """Send the delete now; nothing more is due."""
        self._send(self.goodbye())
        self._state = _State.DONE
        self._due = None

    def _summary(self) -> str:
        assert self._ike is not None and self._child is not None
        inner = f" for {self._inner}" if self._inner else ""
        return (
            f"IKE {self._ike.name}, responder proved {self._responder_proof}; "
            f"child SA ESP {self._child.name}{inner}"
        )
