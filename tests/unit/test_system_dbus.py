"""The system D-Bus that ippeveprinter needs comes up even after a bus died and left its pid file."""

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from printer_sim.dbus import ensure_system_dbus

pytestmark = pytest.mark.integration

RUN_DIR = Path("/run/dbus")


def _answers() -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(RUN_DIR / "system_bus_socket"))
        except OSError:
            return False
    return True


def test_a_dead_bus_with_a_stale_pid_file_is_replaced():
    ensure_system_dbus()
    pid = int((RUN_DIR / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (RUN_DIR / "pid").exists(), "the killed bus leaves its pid file behind, as in a reused machine"
    assert not _answers()

    ensure_system_dbus()

    assert _answers()
    assert int((RUN_DIR / "pid").read_text()) != pid


def test_a_running_bus_is_left_alone():
    ensure_system_dbus()
    pid = int((RUN_DIR / "pid").read_text())
    ensure_system_dbus()
    assert int((RUN_DIR / "pid").read_text()) == pid
    assert _answers()
