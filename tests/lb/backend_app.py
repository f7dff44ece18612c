"""A stand-in collector for the load-balancer tests: a real HTTP server in its own process.

Run: python backend_app.py --id c1 --port 18081 --dir STATE_DIR

- GET /readyz answers 200, or 503 while STATE_DIR/<id>.notready exists.
- Every other request is written to STATE_DIR/<id>.receipts ("METHOD PATH TEST-ID") the moment its
  headers arrive, before the body is read, so a test can count how often the cluster received it.
- GET /whoami -> the server id. GET|POST /slow?seconds=N -> sleeps before answering (kill it then).
- POST /upload (and /api/v1/jobs) -> {"id", "size", "sha256", "chunked"} of the body (chunked or Content-Length).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def make_handler(server_id: str, state_dir: Path) -> type[BaseHTTPRequestHandler]:
    receipts = state_dir / f"{server_id}.receipts"
    notready = state_dir / f"{server_id}.notready"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _receipt(self) -> None:
            line = f"{self.command} {urlsplit(self.path).path} {self.headers.get('X-Test-Id', '-')}\n"
            fd = os.open(receipts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

        def _body(self) -> tuple[bytes, bool]:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts), True
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0"))), False

        def _slow(self) -> None:
            seconds = float(parse_qs(urlsplit(self.path).query).get("seconds", ["5"])[0])
            time.sleep(seconds)
            self._answer(200, {"id": server_id, "slept": seconds})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/readyz":
                if notready.exists():
                    self._answer(503, {"ready": False, "reason": "test says not ready"})
                else:
                    self._answer(200, {"ready": True})
                return
            self._receipt()
            if path == "/whoami":
                self._answer(200, {"id": server_id, "forwarded_for": self.headers.get("X-Forwarded-For")})
            elif path == "/slow":
                self._slow()
            else:
                self._answer(404, {"error": "not-found"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            self._receipt()
            body, chunked = self._body()
            if path in ("/upload", "/api/v1/jobs"):
                self._answer(201, {"id": server_id, "size": len(body), "chunked": chunked,
                                   "sha256": hashlib.sha256(body).hexdigest()})
            elif path == "/slow":
                self._slow()
            else:
                self._answer(404, {"error": "not-found"})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.id, Path(args.dir)))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
