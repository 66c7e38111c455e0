"""The SSL VPN protocol of Cisco AnyConnect, ocserv and the ``openconnect`` client, as a machine."""
