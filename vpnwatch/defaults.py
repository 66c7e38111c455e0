"""Defaults the command line shows before any configuration is read (a leaf: imports nothing)."""

#: Prometheus' default-port allocations are full from 9100 to 9999 and ask new exporters to
#: register above; 10877 is not taken there.
DEFAULT_PORT = 10877
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
