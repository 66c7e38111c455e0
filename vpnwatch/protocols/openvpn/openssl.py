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


def _ssl_connection(connection: ssl.SSLObject) -> int:
    """The ``SSL *`` inside ``connection``: ``PySSLSocket``'s second field, after its socket."""
    inner = connection._sslobj  # type: ignore[attr-defined]  # the _ssl._SSLSocket it wraps
    address = id(inner) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)
    pointer = ctypes.c_void_p.from_address(address).value
    library = _exporter_library()
    if (
        not pointer
        or library.SSL_get_SSL_CTX(pointer) != _ssl_ctx(connection.context)
        or library.SSL_is_server(pointer) != 0
    ):
        raise ssl.SSLError("the TLS object holds no OpenSSL client connection where expected")
    return pointer


@functools.cache
def exporter_available() -> bool:
    """Whether :func:`export_keying_material` works with this Python and OpenSSL: the probe
    announces TLS-EKM (IV_PROTO) only then, as a client that could not use it must not."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        _ssl_connection(context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO()))
    except (ssl.SSLError, AttributeError, OSError):
        return False
    return True


@functools.cache
def _exporter_library() -> ctypes.CDLL:
    library = _library()
    library.SSL_is_server.argtypes = [ctypes.c_void_p]
    library.SSL_is_server.restype = ctypes.c_int
    library.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
    library.SSL_get_SSL_CTX.restype = ctypes.c_void_p
    library.SSL_export_keying_material.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
    ]  # fmt: skip
    library.SSL_export_keying_material.restype = ctypes.c_int
    return library


def export_keying_material(connection: ssl.SSLObject, label: bytes, length: int) -> bytes:
    """The TLS keying-material exporter (RFC 5705, RFC 8446 §7.5) of an established session,
    without a context, as OpenVPN's TLS-EKM uses it; raises ssl.SSLError if OpenSSL refuses.

    Python 3.11's ``ssl`` has no exporter, so this calls ``SSL_export_keying_material`` on the
    connection's own ``SSL``, checked to belong to the connection's context and to be a client.
    """
    pointer = _ssl_connection(connection)
    out = ctypes.create_string_buffer(length)
    if not _exporter_library().SSL_export_keying_material(
        pointer, out, length, label, len(label), None, 0, 0
    ):
        raise ssl.SSLError("OpenSSL could not export keying material")
    return out.raw
