"""A SOCKS5 client doing what Tor does with a pluggable transport's client, in a few lines.

Run as a script inside the vantage namespace (``python socks5.py PROXY_PORT DEADLINE``), with a
JSON list of ``[host, port, "k=v;k=v"]`` bridges on stdin: for each, at the same time, it asks
the transport at 127.0.0.1:PROXY_PORT to connect to the bridge, with the bridge line's arguments
as the SOCKS username and a NUL password (pt-spec 3.5), then sends bytes through the session and
reads them back (the lab bridge's backend echoes). Prints a JSON list in the same order: the SOCKS
reply code (null when none came within DEADLINE seconds) and whether the bytes came back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys

PROBE = b"vpnwatch interop through obfs4"


async def connect(
    result: dict[str, object], proxy_port: int, host: str, port: int, arguments: str
) -> None:
    """Fill ``result`` as the conversation goes, so that a deadline keeps what was learnt."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    try:
        writer.write(b"\x05\x01\x02")  # version 5, one method: username/password
        if await reader.readexactly(2) != b"\x05\x02":
            raise SystemExit("the transport did not take username/password")
        username = arguments.encode()
        writer.write(b"\x01" + bytes([len(username)]) + username + b"\x01\x00")
        if (await reader.readexactly(2))[1] != 0:
            raise SystemExit("the transport refused the bridge arguments")
        address = ipaddress.ip_address(host)
        kind = b"\x01" if address.version == 4 else b"\x04"
        writer.write(b"\x05\x01\x00" + kind + address.packed + port.to_bytes(2, "big"))
        head = await reader.readexactly(4)
        result["reply"] = head[1]
        if head[1] == 0:
            await reader.readexactly((4 if head[3] == 1 else 16) + 2)
            writer.write(PROBE)
            result["echoed"] = await reader.readexactly(len(PROBE)) == PROBE
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def one(proxy_port: int, host: str, port: int, arguments: str, deadline: float) -> object:
    result: dict[str, object] = {"reply": None, "echoed": False}
    try:
        async with asyncio.timeout(deadline):
            await connect(result, proxy_port, host, port, arguments)
    except TimeoutError:
        pass
    return result


async def main(proxy_port: int, deadline: float) -> None:
    bridges = json.loads(sys.stdin.read())
    results = await asyncio.gather(
        *(one(proxy_port, host, port, arguments, deadline) for host, port, arguments in bridges)
    )
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
