"""The system D-Bus that ippeveprinter refuses to start without, started when none answers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
from pathlib import Path

from pullprint.daemons import require, wait_until


def ensure_system_dbus() -> None:
    """Start the system D-Bus if none answers (ippeveprinter refuses to start without one).

    A pid file left by a bus that has since died (a killed container, an image built with one
    running) would make dbus-daemon refuse to start, so a stale one is removed first.
    """
    run_dir = Path("/run/dbus")
    socket_path = run_dir / "system_bus_socket"
    if _bus_answers(socket_path):
        return
    # One process at a time starts it (the test suite's workers, several clusters on one machine).
    with open("/run/pullprint-dbus.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _bus_answers(socket_path):
            _start(run_dir, socket_path)


def _start(run_dir: Path, socket_path: Path) -> None:
    pid_file = run_dir / "pid"
    owner = _pid_in(pid_file)
    if owner is not None and _is_dbus_daemon(owner):
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: _bus_answers(socket_path), 5, "system D-Bus")
            return
        os.kill(owner, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    paths = require("dbus-daemon")
    run_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([paths["dbus-daemon"], "--system", "--fork", "--print-pid"], check=True,
                   stdout=subprocess.DEVNULL)
    wait_until(lambda: _bus_answers(socket_path), 5, "system D-Bus")


def _bus_answers(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(socket_path))
        except OSError:
            return False
    return True


def _pid_in(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_dbus_daemon(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dbus-daemon"
    except OSError:
        return False
