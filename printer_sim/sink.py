"""Raw TCP (AppSocket/9100) sinks: every connection's bytes become one file in the printer's sink_dir.

One acceptor thread watches all listening sockets (thousands of printers need no thousands of idle
threads); each accepted connection gets its own thread. A job file appears atomically: the bytes go
to a hidden temporary file, the `.json` sidecar is written first, then the `.prn` is renamed into
place, and only then is the connection closed, so a sender that waits for EOF knows it was recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from printer_sim.state import PrinterState

CHUNK = 64 * 1024


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Sink:
    """One printer's 9100 port and its behaviour knobs (changed at run time by the control API)."""

    def __init__(self, state: PrinterState, sink_dir: Path, host: str = "127.0.0.1") -> None:
        self.state = state
        self.sink_dir = sink_dir
        self.host = host
        self.port = 0
        self.stall = False
        self.refuse = False
        self.delay_seconds = 0.0
        self.listener: socket.socket | None = None
        self._seq_lock = threading.Lock()
        sink_dir.mkdir(parents=True, exist_ok=True)
        self._seq = len(list(sink_dir.glob("*.prn")))

    def open(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.listener = sock
        return sock

    def next_name(self) -> str:
        with self._seq_lock:
            self._seq += 1
            return f"{self._seq:06d}-{time.time_ns()}"

    def knobs(self) -> dict[str, object]:
        return {"stall": self.stall, "refuse": self.refuse, "delay_seconds": self.delay_seconds,
                "port": self.port}


class SinkServer:
    """Accepts connections for many sinks in one thread; serves each connection in its own thread."""

    def __init__(self) -> None:
        self.sinks: list[Sink] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._actions: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def add(self, sink: Sink) -> None:
        """Open the sink's port now (before start) so its number is known."""
        self._selector.register(sink.open(), selectors.EVENT_READ, sink)
        self.sinks.append(sink)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept_loop, name="sink-acceptor", daemon=True)
        self._thread.start()

    def _run_in_acceptor(self, action: Callable[[], None]) -> None:
        done = threading.Event()
        self._actions.put((action, done))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise TimeoutError("sink acceptor did not apply the change")

    def configure(self, sink: Sink, *, stall: bool | None = None, refuse: bool | None = None,
                  delay_seconds: float | None = None) -> None:
        if stall is not None:
            sink.stall = bool(stall)
        if delay_seconds is not None:
            sink.delay_seconds = max(0.0, float(delay_seconds))
        if refuse is not None and bool(refuse) != sink.refuse:
            sink.refuse = bool(refuse)
            self._run_in_acceptor(lambda: self._set_listening(sink, not sink.refuse))

    def _set_listening(self, sink: Sink, listening: bool) -> None:
        # Called in the acceptor thread only: the selector is not safe to change from elsewhere.
        if listening and sink.listener is None:
            self._selector.register(sink.open(), selectors.EVENT_READ, sink)
        elif not listening and sink.listener is not None:
            self._selector.unregister(sink.listener)
            sink.listener.close()  # a printer that is off: connections are refused
            sink.listener = None

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.5):
                sink = key.data
                if sink is None:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                    while not self._actions.empty():
                        action, done = self._actions.get()
                        try:
                            action()
                        finally:
                            done.set()
                    continue
                try:
                    conn, peer = key.fileobj.accept()  # type: ignore[union-attr]
                except (BlockingIOError, OSError):
                    continue
                conn.setblocking(True)
                with self._conn_lock:
                    self._connections.add(conn)
                threading.Thread(target=self._serve, args=(sink, conn, peer), daemon=True,
                                 name=f"sink-{sink.state.printer_id}").start()

    def _serve(self, sink: Sink, conn: socket.socket, peer: tuple[str, int]) -> None:
        sink.state.job_started()
        try:
            while sink.stall and not self._stopping.is_set():
                time.sleep(0.05)  # accepted, never read: the sender's buffers fill up and it blocks
            if sink.delay_seconds:
                self._stopping.wait(sink.delay_seconds)  # a slow printer: sender waits before we read
            if self._stopping.is_set():
                return
            self._receive(sink, conn, peer)
        finally:
            sink.state.job_finished()
            with self._conn_lock:
                self._connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _receive(self, sink: Sink, conn: socket.socket, peer: tuple[str, int]) -> None:
        name = sink.next_name()
        tmp = sink.sink_dir / f".{name}.prn.tmp"
        digest = hashlib.sha256()
        size = 0
        complete = True
        conn.settimeout(300)
        with open(tmp, "wb") as fh:
            while True:
                try:
                    chunk = conn.recv(CHUNK)
                except OSError:  # reset or timeout: keep what arrived, mark it incomplete
                    complete = False
                    break
                if not chunk:
                    break
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if size == 0 and complete:
            tmp.unlink()  # a port probe (connect + close) is not a job
            return
        meta = {"bytes": size, "sha256": digest.hexdigest(), "received_at": time.time(),
                "peer": f"{peer[0]}:{peer[1]}", "complete": complete, "printer": sink.state.printer_id}
        _write_atomic(sink.sink_dir / f"{name}.json", json.dumps(meta).encode())
        os.replace(tmp, sink.sink_dir / f"{name}.prn")

    def stop(self) -> None:
        self._stopping.set()
        self._wake_w.send(b"x")
        if self._thread:
            self._thread.join(5)
        for sink in self.sinks:
            if sink.listener is not None:
                sink.listener.close()
                sink.listener = None
        with self._conn_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
