"""Whose fault an OS error is: the one place errors from sockets become Failures or LocalErrors.

What the network or the peer did (a refusal, a reset, an ICMP unreachable, a name that does not
resolve) is a :class:`~vpnwatch.result.Failure`. What this host ran out of or refused (file
descriptors, buffers, memory, a local firewall, no address of the family) is a
:class:`~vpnwatch.result.LocalReason`: the endpoint may be perfectly fine. An errno not listed here
is this host's, too: a report must never blame an endpoint for an error nobody classified.
"""

from __future__ import annotations

import errno
import socket

from vpnwatch.result import Failure, LocalReason

#: By class first: asyncio raises ``ConnectionResetError("Connection lost")`` with no errno when
#: a stream's transport was closed under it by a reset, and that is still the peer's reset.
_CLASS_FAILURES: tuple[tuple[type[OSError], Failure], ...] = (
    (ConnectionRefusedError, Failure.REFUSED),
    (ConnectionResetError, Failure.RESET),
    (ConnectionAbortedError, Failure.RESET),
    (BrokenPipeError, Failure.RESET),
    (TimeoutError, Failure.TIMEOUT),
)

_ERRNO_FAILURES = {
    errno.EHOSTUNREACH: Failure.UNREACHABLE,
    errno.ENETUNREACH: Failure.UNREACHABLE,
    errno.EHOSTDOWN: Failure.UNREACHABLE,
    errno.ENETDOWN: Failure.UNREACHABLE,
    errno.EPROTO: Failure.PROTOCOL,
}

_ERRNO_LOCAL = {
    errno.EMFILE: LocalReason.FILE_DESCRIPTORS,
    errno.ENFILE: LocalReason.FILE_DESCRIPTORS,
    errno.ENOBUFS: LocalReason.BUFFERS,
    errno.ENOMEM: LocalReason.MEMORY,
    errno.EPERM: LocalReason.PERMISSION,
    errno.EACCES: LocalReason.PERMISSION,
    errno.EADDRNOTAVAIL: LocalReason.ADDRESS,
    errno.EAFNOSUPPORT: LocalReason.ADDRESS,
    errno.EADDRINUSE: LocalReason.ADDRESS,
}


def classify(exc: OSError) -> Failure | LocalReason:
    """The peer's failure, or the local reason, behind an OS error."""
    if isinstance(exc, socket.gaierror):
        return _classify_gaierror(exc)
    for cls, failure in _CLASS_FAILURES:
        if isinstance(exc, cls):
            return failure
    code = exc.errno or 0
    return _ERRNO_FAILURES.get(code) or _ERRNO_LOCAL.get(code, LocalReason.OS)


def _classify_gaierror(exc: socket.gaierror) -> Failure | LocalReason:
    """A name that does not resolve is ``dns``; a resolver that could not run here is local."""
    if exc.errno == socket.EAI_MEMORY:
        return LocalReason.MEMORY
    if exc.errno == socket.EAI_SYSTEM:
        return LocalReason.OS
    if exc.errno == socket.EAI_FAMILY:
        return LocalReason.ADDRESS
    return Failure.DNS


def describe(exc: OSError) -> str:
    """A short human line for an OS error: no traceback, no repr."""
    if isinstance(exc, socket.gaierror):
        return f"name did not resolve: {exc.strerror}"
    return exc.strerror or str(exc) or type(exc).__name__
