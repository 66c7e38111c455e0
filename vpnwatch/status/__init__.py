"""``vpnwatch status``: a public status page built from the report's data and incidents."""
