"""A minimal RFC 1179 LPD receiver that records every data file it gets, like the raw 9100 sink.

Only "receive a printer job" (0x02) is implemented, with its control-file (0x02) and data-file
(0x03) subcommands and the one-byte acknowledgements; queue-state requests get an empty answer.
Each data file becomes ``lpd-<ns>-<n>.prn`` in `sink_dir` with exactly the bytes received, plus a
``.json`` sidecar: sha256, size, queue, and what the control file said (user, host, title, copies
= the number of print lines naming that data file). The ``.json`` is written before the ``.prn``
appears, so a file that exists is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import socketserver
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ACK = b"\x00"
NACK = b"\x01"
MAX_LINE = 1024
CHUNK = 64 * 1024
# Control-file lines that print a data file (RFC 1179 §7: f, l, o, p, … take the file name).
_PRINT_COMMANDS = set("cdfglnoprtv")
_counter = itertools.count(1)


def _read_line(stream) -> bytes | None:
    line = stream.readline(MAX_LINE)
    if not line:
        return None
    return line.rstrip(b"\n")


def parse_control(text: str) -> dict[str, object]:
    """The parts of an LPD control file a test cares about."""
    fields = {"H": "host", "P": "user", "J": "job_name", "N": "title", "L": "banner_user"}
    info: dict[str, object] = {}
    prints: dict[str, int] = {}
    for line in text.splitlines():
        if not line:
            continue
        command, value = line[0], line[1:]
        if command in fields:
            info[fields[command]] = value
        elif command in _PRINT_COMMANDS:
            prints[value] = prints.get(value, 0) + 1
            info.setdefault("format", command)
    info["prints"] = prints
    return info


class _Handler(socketserver.StreamRequestHandler):
    server: _LpdServer

    def handle(self) -> None:
        first = _read_line(self.rfile)
        if not first:
            return
        command, operand = first[:1], first[1:].decode("latin-1")
        if command == b"\x02":
            self.wfile.write(ACK)
            self._receive_job(operand.strip())
        elif command in (b"\x03", b"\x04"):
            self.wfile.write(b"no entries\n")
        # 0x01 (print waiting jobs) and 0x05 (remove jobs) need no answer.

    def _receive_job(self, queue: str) -> None:
        control: dict[str, object] = {}
        data_files: list[dict[str, object]] = []
        try:
            while True:
                line = _read_line(self.rfile)
                if line is None:
                    break
                sub, rest = line[:1], line[1:].decode("latin-1")
                if sub == b"\x01":  # abort job
                    self._discard(data_files)
                    data_files, control = [], {}
                    self.wfile.write(ACK)
                    continue
                count_text, _, name = rest.partition(" ")
                try:
                    count = int(count_text)
                except ValueError:
                    self.wfile.write(NACK)
                    return
                if sub == b"\x02":
                    self.wfile.write(ACK)
                    text = self._read_exact(count)
                    control = parse_control(text.decode("latin-1"))
                    self._finish_subcommand()
                elif sub == b"\x03":
                    self.wfile.write(ACK)
                    data_files.append(self._receive_data(name, count))
                    if count:
                        self._finish_subcommand()
                else:
                    self.wfile.write(NACK)
                    return
        except (OSError, ValueError):
            self._discard(data_files)
            return
        self._record(queue, control, data_files)

    def _read_exact(self, count: int) -> bytes:
        data = self.rfile.read(count)
        if len(data) != count:
            raise ValueError("connection closed inside a file")
        return data

    def _finish_subcommand(self) -> None:
        if self.rfile.read(1) != b"\x00":
            raise ValueError("file not followed by a zero byte")
        self.wfile.write(ACK)

    def _receive_data(self, name: str, count: int) -> dict[str, object]:
        """Stream one data file to disk; count 0 means "until the connection closes" (LPRng)."""
        sink: Path = self.server.sink_dir
        stem = f"lpd-{time.time_ns()}-{next(_counter)}"
        part = sink / f"{stem}.part"
        digest = hashlib.sha256()
        size = 0
        with open(part, "wb") as out:
            remaining = count if count else None
            while remaining is None or remaining > 0:
                chunk = self.rfile.read1(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    if remaining is None:
                        break
                    raise ValueError("connection closed inside a data file")
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
            out.flush()
            os.fsync(out.fileno())
        return {"stem": stem, "part": part, "name": name, "size": size, "sha256": digest.hexdigest()}

    def _discard(self, data_files: list[dict[str, object]]) -> None:
        for item in data_files:
            with contextlib.suppress(OSError):
                Path(str(item["part"])).unlink()

    def _record(self, queue: str, control: dict[str, object], data_files: list[dict[str, object]]) -> None:
        prints = control.get("prints") or {}
        assert isinstance(prints, dict)
        for item in data_files:
            stem, part = str(item["stem"]), Path(str(item["part"]))
            meta = {
                "protocol": "lpd", "queue": queue, "data_file": item["name"], "size": item["size"],
                "sha256": item["sha256"], "received_at": time.time(),
                "copies": prints.get(item["name"], 1) or 1,
                "control": {k: v for k, v in control.items() if k != "prints"},
                "peer": self.client_address[0],
            }
            (self.server.sink_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1))
            os.replace(part, self.server.sink_dir / f"{stem}.prn")


class _LpdServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    sink_dir: Path


@dataclass
class LpdSink:
    """A running LPD receiver; `jobs()` lists what arrived, oldest first."""

    server: _LpdServer
    thread: threading.Thread
    sink_dir: Path

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def uri(self) -> str:
        return f"lpd://127.0.0.1:{self.port}/raw"

    def jobs(self) -> list[tuple[Path, dict[str, object]]]:
        found = []
        for prn in sorted(self.sink_dir.glob("lpd-*.prn"), key=lambda p: int(p.stem.split("-")[1])):
            found.append((prn, json.loads(prn.with_suffix(".json").read_text())))
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_lpd_sink(sink_dir: Path, port: int = 0, host: str = "127.0.0.1") -> LpdSink:
    """Listen on host:port (0 picks a free port) and record each received data file in `sink_dir`."""
    sink_dir = Path(sink_dir)
    sink_dir.mkdir(parents=True, exist_ok=True)
    server = _LpdServer((host, port), _Handler)
    server.sink_dir = sink_dir
    thread = threading.Thread(target=server.serve_forever, name=f"lpd-sink-{port}", daemon=True)
    thread.start()
    return LpdSink(server, thread, sink_dir)


if __name__ == "__main__":  # python -m printer_sim.lpd SINK_DIR PORT
    import sys

    sink = start_lpd_sink(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5515)
    print(f"LPD sink on 127.0.0.1:{sink.port}, recording to {sink.sink_dir}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    sink.stop()
