"""PUSH_REPLY: the options a server pushes, parsed and checked as the OpenVPN 2.6 client does.

A server that answers PUSH_REQUEST has accepted us, but its client may still refuse what it
pushed and never reach "Initialization Sequence Completed": compression it may not use
(``allow-compression``), a data-channel cipher it did not offer, a ``pull-filter reject`` match,
a ``tun-mtu`` above ``tun-mtu-max``. :func:`refusal` applies those rules (OpenVPN's
``apply_pull_filter``, ``check_compression_settings_valid``, ``check_pull_client_ncp`` and
``check_session_cipher``), so that "ok" means a user's client with the same file would connect.

:class:`PushReply` also exposes the values the data channel needs (peer-id, cipher, key
derivation, addresses), typed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

PUSH_REPLY = "PUSH_REPLY"
#: ``allow-compression``: ``no`` lets only stub framing through (2.6's default), ``asym`` and
#: ``yes`` let a server's compression through.
AllowCompression = Literal["no", "asym", "yes"]
PullFilterAction = Literal["accept", "ignore", "reject"]
#: OpenVPN's default ``tun-mtu-max``: a pushed ``tun-mtu`` above it makes the client give up.
DEFAULT_TUN_MTU_MAX = 1600
#: 2.6's default data-ciphers.
DEFAULT_DATA_CIPHERS = ("AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305")
#: Compression a stub-only client accepts: framing without compressing anything.
_STUB_COMPRESSION = frozenset({"comp-lzo no", "compress", "compress stub", "compress stub-v2"})


class PushError(ValueError):
    """A PUSH_REPLY that is not one, or carries a value that cannot be read."""


class PushRefused(Exception):
    """The 2.6 client would refuse this PUSH_REPLY; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class PushReply:
    """What one PUSH_REPLY (with its continuations) carried, in the server's order."""

    #: Every pushed option, as its words (``("route", "198.18.0.0", "255.255.0.0")``).
    options: tuple[tuple[str, ...], ...]

    def values(self, name: str) -> list[tuple[str, ...]]:
        """The arguments of every pushed ``name`` option, in order."""
        return [option[1:] for option in self.options if option[0] == name]

    def last(self, name: str) -> tuple[str, ...] | None:
        """The arguments of the last pushed ``name`` (OpenVPN applies options in order)."""
        found = self.values(name)
        return found[-1] if found else None

    @property
    def peer_id(self) -> int | None:
        value = self.last("peer-id")
        return _integer(value, "peer-id") if value is not None else None

    @property
    def cipher(self) -> str | None:
        value = self.last("cipher")
        return value[0] if value else None

    @property
    def key_derivation(self) -> str | None:
        """``tls-ekm`` when the data-channel keys come from TLS's exporter, else None."""
        value = self.last("key-derivation")
        return value[0] if value else None

    @property
    def protocol_flags(self) -> tuple[str, ...]:
        return tuple(word for value in self.values("protocol-flags") for word in value)

    @property
    def ifconfig(self) -> tuple[str, str] | None:
        """(local address, netmask or remote address) for the tunnel, IPv4."""
        value = self.last("ifconfig")
        return (value[0], value[1]) if value and len(value) >= 2 else None

    @property
    def ifconfig_ipv6(self) -> tuple[str, str] | None:
        """(address/prefix, remote address) for the tunnel, IPv6."""
        value = self.last("ifconfig-ipv6")
        return (value[0], value[1]) if value and len(value) >= 2 else None

    @property
    def route_gateway(self) -> str | None:
        value = self.last("route-gateway")
        return value[0] if value else None

    @property
    def topology(self) -> str | None:
        value = self.last("topology")
        return value[0] if value else None

    @property
    def tun_mtu(self) -> int | None:
        value = self.last("tun-mtu")
        return _integer(value, "tun-mtu") if value is not None else None

    @property
    def compression(self) -> str | None:
        """The last compression option pushed (``comp-lzo no``, ``compress lz4-v2``…), if any."""
        for option in reversed(self.options):
            if option[0] in ("comp-lzo", "compress"):
                return " ".join(option)
        return None


def _integer(value: tuple[str, ...], name: str) -> int:
    if not value or not value[0].isdigit():
        raise PushError(f"pushed {name} is not a number")
    return int(value[0])


@dataclass
class PushAssembler:
    """Joins a PUSH_REPLY sent in parts (``push-continuation 2`` … ``push-continuation 1``)."""

    _lines: list[str] = field(default_factory=list)

    def add(self, command: str) -> tuple[str, ...] | None:
        """One PUSH_REPLY command; every option line once its last part arrived, else None."""
        if not command.startswith(PUSH_REPLY):
            raise PushError("not a PUSH_REPLY")
        body = command[len(PUSH_REPLY) :].lstrip(",")
        more = False
        for part in body.split(","):
            line = part.strip()
            if not line:
                continue
            if line.startswith("push-continuation"):
                more = line.split()[-1] == "2"
                continue
            self._lines.append(line)
        return None if more else tuple(self._lines)


def parse_options(lines: Sequence[str]) -> PushReply:
    """The pushed option lines, split into words as OpenVPN splits them."""
    return PushReply(tuple(_words(line) for line in lines))


def _words(line: str) -> tuple[str, ...]:
    try:
        words = shlex.split(line, posix=True)
    except ValueError:
        words = line.split()
    return tuple(words) or (line,)


@dataclass(frozen=True, slots=True)
class PullPolicy:
    """What the client's own file says about pushed options."""

    #: The ciphers the client offered (``data-ciphers``, with ``cipher`` appended as 2.6 does).
    data_ciphers: tuple[str, ...] = DEFAULT_DATA_CIPHERS
    #: ``data-ciphers-fallback``: the cipher used with a server that negotiates none.
    fallback_cipher: str | None = None
    allow_compression: AllowCompression = "no"
    #: ``pull-filter`` lines in order: the first whose text starts the option decides.
    pull_filters: tuple[tuple[PullFilterAction, str], ...] = ()
    tun_mtu_max: int = DEFAULT_TUN_MTU_MAX


def filter_options(lines: Sequence[str], policy: PullPolicy) -> tuple[list[str], str | None]:
    """Apply ``pull-filter``: the lines kept, and the first line a ``reject`` filter matched."""
    kept: list[str] = []
    for line in lines:
        action: PullFilterAction = "accept"
        for candidate, text in policy.pull_filters:
            if line.startswith(text):
                action = candidate
                break
        if action == "reject":
            return kept, line
        if action == "accept":
            kept.append(line)
    return kept, None


def accept_push(lines: Sequence[str], policy: PullPolicy, server_cipher: str | None) -> PushReply:
    """The options the 2.6 client would apply; raises PushRefused (one actionable line) where it
    would give up instead.

    ``server_cipher`` is the ``cipher`` in the server's options string, which a client uses when
    the server pushes none (OpenVPN's "poor man's NCP").
    """
    kept, rejected = filter_options(lines, policy)
    if rejected is not None:
        # Only the option's name: a rejected line may carry a secret (auth-token).
        name = rejected.split()[0]
        raise PushRefused(f"server pushed '{name}', which the client's pull-filter rejects")
    reply = parse_options(kept)
    reason = _refusal(reply, policy, server_cipher)
    if reason is not None:
        raise PushRefused(reason)
    return reply


def _refusal(reply: PushReply, policy: PullPolicy, server_cipher: str | None) -> str | None:
    compression = reply.compression
    if (
        compression is not None
        and compression not in _STUB_COMPRESSION
        and policy.allow_compression == "no"
    ):
        return (
            f"server pushed '{compression}', which OpenVPN 2.6 refuses without "
            "'allow-compression asym' in the client file (its default is 'no')"
        )
    offered = [cipher.upper() for cipher in policy.data_ciphers]
    fallback = policy.fallback_cipher.upper() if policy.fallback_cipher else None
    pushed = reply.cipher
    if pushed is not None:
        if pushed.upper() not in offered and pushed.upper() != fallback:
            return (
                f"server pushed cipher {pushed}, which is not in the client's data-ciphers "
                f"({':'.join(policy.data_ciphers)})"
            )
    elif not (
        (server_cipher and server_cipher.upper() in offered) or (server_cipher is None and fallback)
    ):
        return (
            "no data-channel cipher could be negotiated: the server pushed none and uses "
            f"{server_cipher or 'an unknown one'}; add it to data-ciphers or "
            "data-ciphers-fallback"
        )
    mtu = reply.tun_mtu
    if mtu is not None and mtu > policy.tun_mtu_max:
        return f"server pushed tun-mtu {mtu}, above the client's tun-mtu-max {policy.tun_mtu_max}"
    if "epoch" in reply.protocol_flags and reply.peer_id is None:
        return "server asked for the epoch data format without a peer-id"
    return None
