"""The two OpenSSL settings Python's ``ssl`` cannot make: TLS 1.3 cipher suites and groups.

``tls-ciphersuites`` and ``tls-groups`` change what OpenVPN's client offers, and a server that
shares none of them refuses it; a probe that ignored them would report ok where the user's client
fails. ``ssl.SSLContext`` (Python 3.11) wraps an ``SSL_CTX`` but exposes neither
``SSL_CTX_set_ciphersuites`` nor ``SSL_CTX_set1_groups_list``, so these call them through ctypes
on the context's own ``SSL_CTX``, found in the C struct right after the object header, from the
OpenSSL the ``_ssl`` module itself is linked with.
"""

from __future__ import annotations

import ctypes
import functools
import ssl

#: ``SSL_CTRL_SET_GROUPS_LIST`` (``SSL_CTX_set1_groups_list`` is a macro over ``SSL_CTX_ctrl``).
_SET_GROUPS_LIST = 92


@functools.cache
def _library() -> ctypes.CDLL:
    import _ssl  # noqa: PLC0415 - the extension module whose OpenSSL the contexts use

    library = ctypes.CDLL(_ssl.__file__)
    library.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
    library.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    library.SSL_CTX_ctrl.restype = ctypes.c_long
    return library


def _ssl_ctx(context: ssl.SSLContext) -> int:
    """The ``SSL_CTX *`` inside ``context`` (``PySSLContext``'s first field)."""
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer:
        raise ssl.SSLError("the TLS context has no OpenSSL context")
    return pointer


def set_ciphersuites(context: ssl.SSLContext, suites: str) -> None:
    """``tls-ciphersuites``: the TLS 1.3 suites offered; raises ssl.SSLError if none is known."""
    if _library().SSL_CTX_set_ciphersuites(_ssl_ctx(context), suites.encode()) != 1:
        raise ssl.SSLError(f"tls-ciphersuites {suites!r}: no cipher suite OpenSSL knows")


def set_groups(context: ssl.SSLContext, groups: str) -> None:
    """``tls-groups``: the key-exchange groups offered; raises ssl.SSLError for an unknown one."""
    result = _library().SSL_CTX_ctrl(_ssl_ctx(context), _SET_GROUPS_LIST, 0, groups.encode())
    if result != 1:
        raise ssl.SSLError(f"tls-groups {groups!r}: a group OpenSSL does not know")
