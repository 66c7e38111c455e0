"""How ``verify-x509-name`` compares the server's name: its own module, so that target models
can name the choices without loading the TLS code."""

from typing import Literal

X509NameType = Literal["subject", "name", "name-prefix"]
