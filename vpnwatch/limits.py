"""How many probes this host can run at once: the configured cap, within its file descriptors.

Every probe holds a socket. A cap above what ``RLIMIT_NOFILE`` leaves free turns into EMFILE
errors; they are local errors, never endpoint failures, but they are probes not made. So ``run``
and ``check`` both take the smaller of the configured concurrency and what the limit allows.
"""

from __future__ import annotations

import logging
import os
import resource

log = logging.getLogger(__name__)

#: Descriptors kept free for everything that is not a probe: the web server, log files, a reload,
#: a TLS context loading its certificates.
RESERVED_FDS = 32
#: Descriptors one probe may hold at a time (its socket; a name lookup's own).
FDS_PER_PROBE = 2


def open_fds() -> int:
    """Descriptors open in this process now."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc: assume a fresh process's handful
        return 16


def probe_capacity(configured: int) -> int:
    """``configured``, lowered to what the descriptor limit leaves room for (at least 1)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    room = max(1, (soft - open_fds() - RESERVED_FDS) // FDS_PER_PROBE)
    if room < configured:
        log.warning(
            "concurrency %d lowered to %d: the open-files limit is %d (raise it with ulimit -n)",
            configured,
            room,
            soft,
        )
        return room
    return configured
