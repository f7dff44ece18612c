"""Real printer targets for the output contract: raw TCP sinks, ippeveprinter and an LPD receiver via cupsd."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from printer_sim.dbus import ensure_system_dbus
from pullprint.daemons import Daemon, free_port, port_open, require, start


@dataclass
class Arrival:
    """One job as the printer saw it."""

    data: bytes
    copies: int  # copies the printer was asked to make on top of the bytes (IPP/LPD attribute)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Target:
    kind: str  # socket | ipp | lpd
    uri: str
    arrivals: Callable[[], list[Arrival]]
    success: str  # the outcome a good delivery reports
    cups_server: str | None = None

    def wait_for(self, count: int, expected_sizes: list[int] | None = None, timeout: float = 30) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.arrivals()
            sizes_ok = expected_sizes is None or [len(a.data) for a in found[:count]] == expected_sizes
            if (len(found) >= count and sizes_ok) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="session")
def open_base() -> Iterator[Path]:
    """A folder the lp user may enter (cupsd's backends run as lp and read the spool)."""
    path = Path(tempfile.mkdtemp(prefix="pullprint-output-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="session")
def cupsd(open_base: Path):
    from pullprint.cupsd import PrivateCupsd

    daemon = PrivateCupsd.start(open_base / "cupsd")
    yield daemon
    daemon.stop()


class PythonSink:
    """A raw 9100 listener in a thread: one recording per connection, read until the sender half-closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[dict] = []
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._receive, args=(conn,), daemon=True).start()

    def _receive(self, conn: socket.socket) -> None:
        record = {"data": bytearray(), "half_closed": False, "done": False}
        self.connections.append(record)
        with conn:
            while chunk := conn.recv(65536):
                record["data"] += chunk
            # recv returned b"": the sender shut down its side; recorded before we close ours,
            # which is what the sender waits for.
            record["half_closed"] = record["done"] = True

    def arrivals(self) -> list[Arrival]:
        return [Arrival(bytes(c["data"]), 1) for c in self.connections if c["done"]]

    def stop(self) -> None:
        self.stopped = True
        self.listener.close()


@pytest.fixture
def python_sink() -> Iterator[PythonSink]:
    sink = PythonSink()
    yield sink
    sink.stop()


def _socat_sink(folder: Path) -> tuple[Daemon, int]:
    paths = require("socat")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    # One file per connection; renamed when the sender has half-closed and cat has finished.
    command = f'f={folder}/job-$(date +%s%N); cat > "$f.part" && mv "$f.part" "$f.prn"'
    daemon = start("socat-sink", [paths["socat"], "-u", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                                  f"SYSTEM:{command}"], ready=lambda: port_open("127.0.0.1", port))
    return daemon, port


@pytest.fixture(scope="session")
def ippeveprinter(open_base: Path) -> Iterator[tuple[str, Path]]:
    paths = require("ippeveprinter")
    ensure_system_dbus()
    spool = open_base / "ippeve"
    spool.mkdir()
    # -c runs per job with the job attributes in its environment: keep them next to the document.
    hook = open_base / "ippeve-hook.sh"
    hook.write_text('#!/bin/sh\nenv | grep "^IPP_" > "$1.env"\n')
    hook.chmod(0o755)
    port = free_port()
    daemon = start("ippeveprinter", [
        paths["ippeveprinter"], "-p", str(port), "-n", "localhost", "-d", str(spool), "-k", "-r", "off", "-2",
        "-f", "application/pdf,application/postscript,text/plain,application/octet-stream",
        "-c", str(hook), "pullprint-test-ipp"], log_path=open_base / "ippeveprinter.log",
        ready=lambda: port_open("127.0.0.1", port))
    yield f"ipp://localhost:{port}/ipp/print", spool
    daemon.stop()


def _ipp_arrivals(spool: Path) -> list[Arrival]:
    found = []
    for env_file in sorted(spool.glob("*.env"), key=lambda p: int(p.name.split("-")[0])):
        document = env_file.with_suffix("")
        attributes = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        found.append(Arrival(document.read_bytes(), int(attributes.get("IPP_COPIES", "1")), attributes))
    return found


@pytest.fixture
def target_factory(request, python_sink, open_base, tmp_path):
    cleanups: list[Callable[[], None]] = []

    def make(kind: str) -> Target:
        if kind == "socket-python":
            return Target("socket", f"socket://127.0.0.1:{python_sink.port}", python_sink.arrivals, "delivered")
        if kind == "socket-socat":
            folder = tmp_path / "socat"
            daemon, port = _socat_sink(folder)
            cleanups.append(daemon.stop)
            return Target("socket", f"socket://127.0.0.1:{port}",
                          # the readiness probe's connection left an empty file: skip empty ones
                          lambda: [Arrival(p.read_bytes(), 1) for p in sorted(folder.glob("*.prn"))
                                   if p.stat().st_size], "delivered")
        cupsd = request.getfixturevalue("cupsd")
        if kind == "ipp":
            uri, spool = request.getfixturevalue("ippeveprinter")
            before = len(_ipp_arrivals(spool))
            return Target("ipp", uri, lambda: _ipp_arrivals(spool)[before:], "completed", cupsd.server)
        if kind == "lpd":
            from printer_sim.lpd import start_lpd_sink

            sink = start_lpd_sink(tmp_path / "lpd")
            cleanups.append(sink.stop)
            return Target("lpd", sink.uri, lambda: [
                Arrival(prn.read_bytes(), int(meta["copies"]), {k: str(v) for k, v in meta.items()})
                for prn, meta in sink.jobs()], "completed", cupsd.server)
        raise ValueError(kind)

    yield make
    for cleanup in cleanups:
        cleanup()


def random_document(size: int) -> bytes:
    return b"%!PS-Adobe-3.0\n" + os.urandom(size)
