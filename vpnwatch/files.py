"""Reading the files users point vpnwatch at: bounded, regular files only, never a hang.

A path comes from a user's file (``ca /etc/openvpn/ca.crt`` in a provider's ``.ovpn``), so it may
name anything: ``/dev/zero`` would be read until memory runs out, and a FIFO or ``/dev/stdin``
would block the event loop (reloads read files in it) for as long as nobody writes. So only
regular files are read, and only up to :data:`MAX_FILE_SIZE`, which no real config or key
reaches.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: Larger than any config, certificate bundle or key file; a file beyond it is not one.
MAX_FILE_SIZE = 1 << 20


class UnreadableFile(Exception):
    """Why a file could not be read, in words fit for the user; never any of its content."""


def read_text(path: Path, *, limit: int = MAX_FILE_SIZE) -> str:
    """The UTF-8 text of the regular file at ``path``, with newlines made ``\\n``."""
    data = read_bytes(path, limit=limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile("not UTF-8 text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_bytes(path: Path, *, limit: int = MAX_FILE_SIZE) -> bytes:
    """The content of the regular file at ``path`` (a pkcs12 bundle is binary)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or type(exc).__name__) from None
    except ValueError:  # a NUL character, which no path can hold
        raise UnreadableFile("the path contains a NUL character") from None
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFile("not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(f"larger than {limit // 1024} KiB, more than any config or key")
    return data
