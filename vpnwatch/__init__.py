"""vpnwatch: real VPN handshakes, minute by minute, exported to Prometheus."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vpnwatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
