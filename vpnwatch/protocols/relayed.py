"""What a proxy probe asks the proxy to fetch, and how it knows the answer is the destination's.

Shadowsocks and Trojan relay a stream to a destination named in their request (a SOCKS5-style
address). A probe proves data passes only by a reply it can check: the status line of an HTTP
URL (``generate_204``: 204 and no body), or random bytes an echo service of the user's sends
back. A proxy that answered with anything else — a fallback web site, a captive portal — did not
relay our request, however well its own layers verified.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: SOCKS5 address types, which Shadowsocks and Trojan both reuse.
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
#: Random bytes an echo destination must send back.
ECHO_LENGTH = 1024
#: How much of an HTTP reply is read before judging it: the status line and headers fit.
MAX_HTTP_HEAD = 16384


def encode_address(host: str, port: int) -> bytes:
    """``host``/``port`` as a SOCKS5 address: type, address, big-endian port."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        if not 0 < len(name) < 256:
            raise ValueError("a destination name must be 1-255 bytes") from None
        head = bytes([ATYP_DOMAIN, len(name)]) + name
    else:
        head = bytes([ATYP_IPV4 if ip.version == 4 else ATYP_IPV6]) + ip.packed
    return head + port.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the proxy is asked to connect, and how its answer is checked.

    ``url`` is ``http://host[:port]/path`` (the reply's status must be ``status``) or
    ``echo://host:port`` (a service that echoes what it receives).
    """

    kind: str
    host: str
    port: int
    path: str = "/"
    status: int = 204

    @classmethod
    def parse(cls, url: str, status: int = 204) -> Destination:
        """Raises ValueError with a message fit for a user."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "echo"):
            raise ValueError("must be http://HOST[:PORT]/PATH or echo://HOST:PORT")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.scheme == "echo":
            if port is None:
                raise ValueError("echo:// needs a port")
            return cls("echo", parts.hostname, port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls("http", parts.hostname, port or 80, path, status)

    def check(self, random_bytes: Callable[[int], bytes] = os.urandom) -> RelayCheck:
        if self.kind == "echo":
            return EchoCheck(random_bytes(ECHO_LENGTH))
        return HttpCheck(self.host, self.port, self.path, self.status)


class RelayCheck:
    """One request through the proxy and the judgement of what came back."""

    #: The bytes sent to the destination through the proxy.
    request: bytes = b""

    def judge(self, received: bytes, ended: bool) -> tuple[bool, str] | None:
        """None while more is needed; (ok, detail) once ``received`` decides it.

        ``ended`` is True when the stream ended after ``received``.
        """
        raise NotImplementedError


class EchoCheck(RelayCheck):
    def __init__(self, payload: bytes) -> None:
        self.request = payload

    def judge(self, received: bytes, ended: bool) -> tuple[bool, str] | None:
        if received[: len(self.request)] != self.request[: len(received)]:
            return False, f"the reply is not the echo of what was sent ({_shown(received)})"
        if len(received) >= len(self.request):
            return True, f"{len(self.request)} bytes echoed by the destination"
        if ended:
            return False, f"the echo stopped after {len(received)} of {len(self.request)} bytes"
        return None


class HttpCheck(RelayCheck):
    def __init__(self, host: str, port: int, path: str, status: int) -> None:
        authority = host if port == 80 else f"{host}:{port}"
        if ":" in host and port != 80:
            authority = f"[{host}]:{port}"
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: vpnwatch\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode()
        self._status = status

    def judge(self, received: bytes, ended: bool) -> tuple[bool, str] | None:
        head, sep, _ = received.partition(b"\r\n")
        if not sep:
            if ended or len(received) > MAX_HTTP_HEAD:
                return False, f"no HTTP status line in the reply ({_shown(received)})"
            return None
        words = head.split(b" ", 2)
        if len(words) < 2 or not words[0].startswith(b"HTTP/1.") or not words[1].isdigit():
            return False, f"the reply is not HTTP ({_shown(received)})"
        status = int(words[1])
        if status != self._status:
            return False, f"the destination answered HTTP {status}, not {self._status}"
        return True, f"HTTP {status} from the destination"


def is_http_reply(data: bytes) -> bool:
    """Whether ``data`` starts like an HTTP response: what a fallback web site sends."""
    return data.startswith(b"HTTP/1.")


def _shown(data: bytes) -> str:
    """A short, printable description of bytes from the network."""
    if not data:
        return "nothing"
    if is_http_reply(data):
        return data.partition(b"\r\n")[0][:60].decode("ascii", "replace")
    return f"{len(data)} bytes"
