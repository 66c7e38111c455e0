"""The test lab: real VPN servers in network namespaces, and a censor between them and us."""
