"""Shadowsocks AEAD (SIP004/SIP002/SIP003): the probe's machine and the cipher it speaks."""
