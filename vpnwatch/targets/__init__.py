"""Target models: one per protocol, named by its registration in :mod:`vpnwatch.registry`."""
