"""Capture ``dns.json``: the DNS control's query, its id fixed, and the real dnsmasq's answers.

Run as root (it builds a lab namespace): ``python -m tests.vectors.capture_dns``. The lab's
resolver is Debian's dnsmasq (see vpnwatch/lab/controls.py); a name it serves and one it does not
give a NOERROR and an NXDOMAIN answer. The unit tests replay them with no network.
"""

from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

from vpnwatch.lab.controls import LAB_NAME, start_controls
from vpnwatch.lab.netns import Namespace
from vpnwatch.protocols.controls import DnsCheck

VECTORS = Path(__file__).with_name("dns.json")
#: (name, record type, query id) of each capture.
QUERIES = ((LAB_NAME, "A", 0x5A17), ("absent.invalid", "A", 0x0BAD))


def capture(host: str, port: int, name: str, record_type: str, query_id: int) -> dict[str, object]:
    check = DnsCheck(name, record_type, query_id=query_id)
    check.start(0.0)
    (query,) = check.data_to_send(0.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5.0)
        sock.sendto(query, (host, port))
        answer, _ = sock.recvfrom(4096)
    return {
        "name": name,
        "record_type": record_type,
        "query_id": query_id,
        "query": query.hex(),
        "answer": answer.hex(),
    }


def main() -> None:
    with Namespace() as namespace, tempfile.TemporaryDirectory() as directory:
        controls = start_controls(namespace, Path(directory))
        captures = [capture(controls.host, controls.dns_port, *query) for query in QUERIES]
    VECTORS.write_text(json.dumps({"resolver": "dnsmasq", "captures": captures}, indent=1) + "\n")
    print(f"wrote {len(captures)} captures to {VECTORS}")


if __name__ == "__main__":
    main()
