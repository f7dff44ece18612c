"""The system D-Bus that ippeveprinter needs comes up even after a bus died and left its pid file.

Each test runs in a child process with a mount namespace of its own and an empty /run/dbus: the
buses it kills and starts are its own, unseen by the ippeveprinters of tests on other workers.
"""

import ctypes
import os
import signal
import socket
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from printer_sim.dbus import ensure_system_dbus

pytestmark = pytest.mark.integration

RUN_DIR = Path("/run/dbus")
CLONE_NEWNS = 0x00020000


def _answers() -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(RUN_DIR / "system_bus_socket"))
        except OSError:
            return False
    return True


def _alone(scenario: Callable[[], None]) -> None:
    """Run `scenario` in a child with its own mount namespace and an empty /run/dbus; fail if it fails."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    child = os.fork()
    if child == 0:
        code = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            subprocess.run(["mount", "--make-rprivate", "/"], check=True)
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(RUN_DIR)], check=True)
            try:
                scenario()
                code = 0
            finally:
                owner = (RUN_DIR / "pid").read_text().strip() if (RUN_DIR / "pid").exists() else ""
                if owner:
                    os.kill(int(owner), signal.SIGKILL)  # the bus of this namespace goes with it
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the scenario failed: its traceback is in the captured output"


def test_a_dead_bus_with_a_stale_pid_file_is_replaced():
    def scenario() -> None:
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

    _alone(scenario)


def test_a_running_bus_is_left_alone():
    def scenario() -> None:
        assert not _answers(), "the namespace's /run/dbus starts empty"
        ensure_system_dbus()
        pid = int((RUN_DIR / "pid").read_text())
        ensure_system_dbus()
        assert int((RUN_DIR / "pid").read_text()) == pid
        assert _answers()

    _alone(scenario)


def test_a_failing_scenario_fails_the_test():
    """The isolation itself: an assertion inside the child is a failure outside."""
    def scenario() -> None:
        raise AssertionError("inside the namespace")

    with pytest.raises(AssertionError, match="the scenario failed"):
        _alone(scenario)
