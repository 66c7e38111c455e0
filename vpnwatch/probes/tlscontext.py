"""TLS client contexts, one per trust store: parsing a CA costs as much as a handshake."""

from __future__ import annotations

import functools
import ssl


@functools.lru_cache(maxsize=64)
def client_context(ca: str | None) -> ssl.SSLContext:
    """Verifies chains against ``ca`` (PEM), or the system's store when None, and names."""
    return ssl.create_default_context(cadata=ca)
