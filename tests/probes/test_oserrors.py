"""Whose fault an OS error is: every class the driver can meet, mapped once."""

from __future__ import annotations

import errno
import socket

import pytest

from vpnwatch.probes.oserrors import classify
from vpnwatch.result import Failure, LocalReason


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        # asyncio's stream reports a reset under it without an errno (issue 22, item 6).
        (ConnectionResetError("Connection lost"), Failure.RESET),
        (ConnectionResetError(errno.ECONNRESET, "reset"), Failure.RESET),
        (BrokenPipeError(errno.EPIPE, "pipe"), Failure.RESET),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Failure.REFUSED),
        (OSError(errno.ECONNREFUSED, "refused"), Failure.REFUSED),
        (OSError(errno.EHOSTUNREACH, "no host"), Failure.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "no net"), Failure.UNREACHABLE),
        (socket.gaierror(socket.EAI_NONAME, "unknown"), Failure.DNS),
        (OSError(errno.EMFILE, "too many"), LocalReason.FILE_DESCRIPTORS),
        (OSError(errno.ENFILE, "too many"), LocalReason.FILE_DESCRIPTORS),
        (OSError(errno.ENOBUFS, "buffers"), LocalReason.BUFFERS),
        (OSError(errno.EPERM, "firewall"), LocalReason.PERMISSION),
        (OSError(errno.EADDRNOTAVAIL, "no address"), LocalReason.ADDRESS),
        (OSError(errno.EIO, "unheard of"), LocalReason.OS),  # nobody's verdict on the peer
    ],
)
def test_each_error_is_blamed_on_the_right_side(error: OSError, cause: object) -> None:
    assert classify(error) == cause
