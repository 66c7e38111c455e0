"""A misbehaving HTTP server on loopback: what ``vpnwatch report`` meets if its Prometheus is hostile.

It stands in for no VPN server, only for whatever answers at the URL a user gave the report.
Each request's first path segment names the behaviour (``/trickle/api/v1/series`` trickles), so
one server on one port serves every case. Behaviours are async functions that read nothing more
and write what they like to the socket, as slowly or as much as they like; the server runs in an
asyncio loop on its own thread and drops every connection when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socketserver
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping

Behaviour = Callable[[str, asyncio.StreamWriter], Awaitable[None]]


class AnsweringHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for small test servers: one call answers, and nothing is logged."""

    def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def threaded(server: socketserver.BaseServer) -> Iterator[None]:
    """Run a blocking ``socketserver`` (an ``http.server``) on a thread while the block runs."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def response(status: int, body: bytes, *, headers: Mapping[str, str] | None = None) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 500: "Error"}.get(status, "X")
    fields = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **(headers or {}),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"HTTP/1.1 {status} {reason}\r\n{head}Connection: close\r\n\r\n".encode() + body


async def _read_request(reader: asyncio.StreamReader) -> str:
    """The request's path; its headers and form body are read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")),
        0,
    )
    await reader.readexactly(length)
    return request_line.split(" ")[1]


class HostileServer:
    """Serves ``behaviours`` by the first path segment at :attr:`url`."""

    def __init__(self, behaviours: Mapping[str, Behaviour]) -> None:
        self.behaviours = behaviours
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            path = await _read_request(reader)
            case, _, api = path.lstrip("/").partition("/")
            await self.behaviours[case]("/" + api, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client gave up, as it should
        finally:
            self._writers.discard(writer)
            writer.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[HostileServer]:
        ready = threading.Event()
        server: list[asyncio.Server] = []

        async def start() -> None:
            server.append(await asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{server[0].sockets[0].getsockname()[1]}"
            ready.set()

        thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(start(), self._loop)
        ready.wait(10)
        try:
            yield self
        finally:

            async def stop() -> None:
                server[0].close()
                for writer in list(self._writers):
                    writer.transport.abort()
                others = asyncio.all_tasks() - {asyncio.current_task()}
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
                await server[0].wait_closed()

            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)
            self._loop.close()
