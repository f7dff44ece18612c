"""A fake collector: a tiny threaded HTTP server that records each submit and answers as told."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    complete: bool


@dataclass
class FakeCollector:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    # Answers to give, in order; the last one repeats. (status, json body)
    answers: list[tuple[int, dict]] = field(default_factory=lambda: [(201, {"id": "job-1"})])
    read_delay: float = 0.0  # seconds to sleep per chunk read (a slow collector)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def uri(self) -> str:
        return f"pullprint://127.0.0.1:{self.port}/"

    def next_answer(self) -> tuple[int, dict]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


def _handler(collector: FakeCollector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _read_body(self) -> tuple[bytes, bool]:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return b"".join(parts), False
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(parts), True
                    data = self.rfile.read(size)
                    self.rfile.readline()
                    parts.append(data)
                    collector.arrived.set()
                    if collector.read_delay:
                        time.sleep(collector.read_delay)
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            return data, len(data) == length

        def do_POST(self) -> None:
            try:
                body, complete = self._read_body()
            except OSError:
                body, complete = b"", False
            collector.received.append(Received("POST", self.path, dict(self.headers.items()), body, complete))
            if not complete:
                return
            status, answer = collector.next_answer()
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    fake = FakeCollector(server)
    server.RequestHandlerClass = _handler(fake)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder the lp user may enter (pytest's tmp_path is 0700 under /tmp/pytest-of-root)."""
    with tempfile.TemporaryDirectory(prefix="pullprint-test-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path
