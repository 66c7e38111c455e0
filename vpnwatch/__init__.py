"""vpnwatch: real VPN handshakes, minute by minute, exported to Prometheus."""

from functools import cache


@cache
def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vpnwatch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata on first use: reading it costs every
    command 50 ms of start-up, most of which never print it."""
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
