"""The Prometheus client's pure parts and its failures (the real server is in test_scenario)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from vpnwatch.report.query import Grid, PrometheusClient, PrometheusError, plan_chunks


def test_chunks_tile_the_grid_exactly() -> None:
    chunks = plan_chunks(86_401, 11_000)
    assert len(chunks) == 8
    assert [i for chunk in chunks for i in chunk] == list(range(86_401))
    assert max(len(chunk) for chunk in chunks) == 11_000
    assert plan_chunks(5, 11_000) == [range(5)]


def test_grid_is_aligned_to_the_step_and_covers_the_range() -> None:
    grid = Grid.covering(1000.0, 2000.0, 300.0)
    assert (grid.start, grid.end, grid.intervals) == (900.0, 2100.0, 4)
    assert grid.index(1500.0) == 2
    assert grid.points == 5


@pytest.mark.parametrize("url", ["file:///etc/passwd", "localhost:9090", "ftp://x"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(PrometheusError, match="not an http"):
        PrometheusClient(url)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers like a Prometheus that rejects the query, or like something else entirely."""

    def do_POST(self) -> None:
        if self.path.startswith("/bad/"):
            body = b'{"status":"error","errorType":"bad_data","error":"parse error at char 5"}'
            self.send_response(400)
        else:
            body = b"<html>not prometheus</html>"
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_rejected_query_reports_prometheus_own_words(fake_server: str) -> None:
    client = PrometheusClient(f"{fake_server}/bad")
    with pytest.raises(PrometheusError, match=r"parse error at char 5 \(HTTP 400\)"):
        client.series(["up"])


def test_something_that_is_not_prometheus_is_named(fake_server: str) -> None:
    with pytest.raises(PrometheusError, match="did not answer like a Prometheus API"):
        PrometheusClient(fake_server).series(["up"])
