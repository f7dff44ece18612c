"""A deadline over several node calls, against a real slow HTTP server: each call is cut to what is
left, a call with nothing left is never sent, work handed to a pool keeps it, and nothing extends it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nodeserver.client import NodeClient, Unreachable, deadline, time_left
from pullprint.log import ContextExecutor


@pytest.fixture
def slow_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            time.sleep(0.5)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except OSError:
                pass  # the caller gave up

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_calls_share_one_deadline_and_the_last_is_not_sent(slow_server) -> None:
    url, seen = slow_server
    client = NodeClient(None, timeout=2.0)
    assert client.json("GET", f"{url}/alone", identity="x") == {}  # 0.5 s: within its own 2 s timeout
    started = time.monotonic()
    with deadline(0.8):
        assert client.json("GET", f"{url}/first", identity="x") == {}
        with pytest.raises(Unreachable) as cut:
            client.request("GET", f"{url}/second", identity="x")  # 0.3 s left: cut short
        assert cut.value.maybe_acted  # it was sent
        with pytest.raises(Unreachable) as skipped:
            client.request("GET", f"{url}/third", identity="x")
        assert skipped.value.code == "deadline" and not skipped.value.maybe_acted
    took = time.monotonic() - started
    assert 0.75 < took < 1.0, took
    assert seen == ["/alone", "/first", "/second"]  # the third never left


def test_a_pool_task_keeps_the_deadline_and_an_inner_one_cannot_extend_it(slow_server) -> None:
    url, _ = slow_server
    client = NodeClient(None, timeout=2.0)
    with ContextExecutor(2) as pool, deadline(0.2):
        future = pool.submit(client.request, "GET", f"{url}/in-pool", identity="x")
        with pytest.raises(Unreachable):
            future.result()
        with deadline(10):
            assert time_left(5.0) < 0.2
    assert time_left(5.0) == 5.0
