"""Tor's link handshake as a client that does not authenticate, then one circuit round trip.

This machine speaks cells: it sits inside the TLS session (:mod:`vpnwatch.protocols.tor.channel`),
which hands it the certificate the relay presented. The conversation (tor-spec §4, §5.1.5):

  → VERSIONS                      ← VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO
  → NETINFO, CREATE_FAST(X)       ← CREATED_FAST(Y, KH)
  → DESTROY

Stages: ``link`` once the CERTS cell proved the bridge line's identity and NETINFO opened the
link; ``data`` once a CREATED_FAST came back whose KH = KDF-TOR(X | Y) answers our X: the relay
created a circuit for us, so the tunnel carries cells both ways. The circuit is torn down at once.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

from vpnwatch.protocols.machine import Failed, MachineBase, StageCompleted
from vpnwatch.protocols.tor.cells import (
    HASH_LENGTH,
    INITIATOR_CIRCUIT_BIT,
    Address,
    Cell,
    CellReader,
    Command,
    MalformedCell,
    check_auth_challenge,
    created_fast_verifies,
    encode,
    negotiate_version,
    netinfo_cell,
    parse_certs,
    parse_netinfo,
    versions_cell,
)
from vpnwatch.protocols.tor.certs import CertsError, RelayIdentity, verify_responder_certs
from vpnwatch.result import Failure

#: Cells any side may send at any time, which carry nothing for us.
PADDING_COMMANDS = frozenset({Command.PADDING, Command.VPADDING, Command.PADDING_NEGOTIATE})
#: DESTROY reason 0: none given, a client closing its own circuit.
DESTROY_REASON_NONE = b"\0"

#: What the machine waits for next → what a timeout then says was missing.
_WAITING = {
    "versions": "no VERSIONS cell from the relay",
    "certs": "no CERTS cell from the relay",
    "netinfo": "no NETINFO cell from the relay",
    "circuit": "no CREATED_FAST answered our CREATE_FAST",
}


class TorLinkClient(MachineBase):
    """One link handshake with the relay whose RSA identity has ``fingerprint``.

    ``tls_certificate`` is the DER certificate of the TLS session the cells travel in;
    ``unix_time`` the wall-clock time certificates must be valid at; ``peer_address`` the relay's
    address as we reached it, for our NETINFO (None when it is not known, as behind a name);
    ``random_bytes`` draws the circuit id and CREATE_FAST's key material.
    """

    stages: tuple[str, ...] = ("link", "data")

    def __init__(
        self,
        fingerprint: str,
        tls_certificate: bytes,
        *,
        unix_time: float,
        peer_address: Address | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__()
        self._fingerprint = fingerprint
        self._tls_certificate = tls_certificate
        self._unix_time = unix_time
        self._peer_address = peer_address
        self._random = random_bytes
        self._reader = CellReader()
        self._waiting = "versions"
        self._identity: RelayIdentity | None = None
        self._circuit = 0
        self._key_material = b""

    def start(self, now: float) -> None:
        super().start(now)
        self._write(versions_cell())

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if not data:
            self._fail(Failure.EOF, f"the relay closed the link ({_WAITING[self._waiting]})")
            return
        self._reader.receive_data(data)
        try:
            while not self.finished and (cell := self._reader.next_cell()) is not None:
                self._handle(cell)
        except MalformedCell as exc:
            self._fail(Failure.PROTOCOL, str(exc))
        except CertsError as exc:
            self._fail(Failure.TLS_CERT, str(exc))

    def timed_out(self) -> Failed:
        return Failed(Failure.TIMEOUT, _WAITING[self._waiting])

    def _write(self, cell: Cell) -> None:
        self._send(encode(cell, self._reader.link_version))

    def _handle(self, cell: Cell) -> None:
        if cell.command in PADDING_COMMANDS:
            return
        if self._waiting == "circuit":
            self._handle_circuit(cell)
            return
        expected = {
            "versions": Command.VERSIONS,
            "certs": Command.CERTS,
            "netinfo": Command.NETINFO,
        }[self._waiting]
        if cell.command == Command.AUTH_CHALLENGE and self._waiting == "netinfo":
            check_auth_challenge(cell.payload)
        elif cell.command != expected:
            raise MalformedCell(f"expected {expected.name}, the relay sent {_name(cell.command)}")
        elif expected == Command.VERSIONS:
            self._reader.link_version = negotiate_version(cell.payload)
            self._waiting = "certs"
        elif expected == Command.CERTS:
            self._identity = verify_responder_certs(
                parse_certs(cell.payload), self._tls_certificate, self._fingerprint, self._unix_time
            )
            self._waiting = "netinfo"
        else:
            parse_netinfo(cell.payload)
            self._open_circuit()

    def _open_circuit(self) -> None:
        """The link is open: say where we reached the relay, then ask for a circuit."""
        self._emit(StageCompleted("link"))
        self._write(netinfo_cell(self._peer_address))
        self._circuit = INITIATOR_CIRCUIT_BIT | int.from_bytes(self._random(4), "big")
        self._key_material = self._random(HASH_LENGTH)
        self._write(Cell(self._circuit, Command.CREATE_FAST, self._key_material))
        self._waiting = "circuit"

    def _handle_circuit(self, cell: Cell) -> None:
        if cell.circuit != self._circuit:
            return  # a late VERSIONS, another link-level cell: nothing about our circuit
        if cell.command == Command.DESTROY:
            reason = cell.payload[0] if cell.payload else 0
            self._fail(Failure.PROTOCOL, f"the relay refused our circuit (DESTROY reason {reason})")
            return
        if cell.command != Command.CREATED_FAST:
            raise MalformedCell(f"expected CREATED_FAST, the relay sent {_name(cell.command)}")
        if not created_fast_verifies(self._key_material, cell.payload):
            raise MalformedCell("the CREATED_FAST key hash does not answer our CREATE_FAST")
        self._emit(StageCompleted("data"))
        self._write(Cell(self._circuit, Command.DESTROY, DESTROY_REASON_NONE))
        assert self._identity is not None and self._reader.link_version is not None
        self._complete(
            f"{self._identity.describe()} proved by its CERTS cell; "
            f"a circuit created and destroyed over link protocol {self._reader.link_version}"
        )


def _name(command: int) -> str:
    try:
        return Command(command).name
    except ValueError:
        return f"command {command}"


def peer_address(host: str) -> Address | None:
    """``host`` as an address, for NETINFO; None when it is a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
