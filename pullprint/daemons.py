"""Start a foreign daemon in its own process group, wait until it answers, stop it by PID.

Nothing runs on a fresh machine (no systemd), so the demo, the tests and the services start
what they need themselves with these helpers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pullprint.errors import PullprintError

# Debian package that provides each program we start, for the "please install" message.
PACKAGES = {
    "redis-server": "redis-server",
    "haproxy": "haproxy",
    "cupsd": "cups",
    "lpadmin": "cups-client",
    "lp": "cups-client",
    "ippeveprinter": "cups-ipp-utils",
    "snmpget": "snmp",
    "dbus-daemon": "dbus",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "socat": "socat",
}

_EXTRA_PATHS = ("/usr/sbin", "/sbin", "/usr/lib/postgresql/15/bin")


class MissingProgram(PullprintError):
    status = 500


def which(program: str) -> str | None:
    """Find a program on PATH or in the sbin folders root's PATH may lack."""
    found = shutil.which(program)
    if found:
        return found
    for folder in _EXTRA_PATHS:
        candidate = Path(folder) / program
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require(*programs: str) -> dict[str, str]:
    """Paths of `programs`; raises MissingProgram naming every missing one and its package."""
    found = {p: which(p) for p in programs}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        packages = sorted({PACKAGES.get(p, p) for p in missing})
        raise MissingProgram(
            "missing-programs",
            f"missing program(s): {', '.join(missing)}. Install them with: "
            f"apt-get install -y {' '.join(packages)}  (or run scripts/run, which installs everything)",
        )
    return {p: path for p, path in found.items() if path}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until it is true; raise TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Daemon:
    """A started process, normally the leader of its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    group: bool = True  # leader of its own process group: signals go to the whole group

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after `timeout`."""
        if self.process.poll() is not None:
            self._signal(signal.SIGKILL)  # the leader is gone: leave none of its group behind
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout)
        self._signal(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole group at once (fault injection)."""
        self._signal(signal.SIGKILL)
        self.process.wait(10)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.group:
                os.killpg(self.pid, signum)
            elif self.process.poll() is None:
                os.kill(self.pid, signum)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start(name: str, argv: Sequence[str], *, log_path: Path | None = None, env: dict[str, str] | None = None,
          cwd: str | os.PathLike[str] | None = None, ready: Callable[[], bool] | None = None,
          timeout: float = 20.0, new_session: bool = True, user: str | None = None) -> Daemon:
    """Start `argv` in a new process group, logging to `log_path`; wait for `ready()` if given.

    With `new_session=False` it stays in the caller's process group, so it dies with its caller's
    group (a collector's own cupsd); `Daemon.stop` then signals just that process. `user` runs it
    as that account, with its primary group and no others (the caller must be root).
    """
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=new_session, user=user,
                                   group=_primary_group(user), extra_groups=[] if user else None)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()  # type: ignore[union-attr]
    daemon = Daemon(name, process, log_path, group=new_session)
    if ready is not None:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise PullprintError("daemon-died", f"{name} exited with {process.returncode}:\n{daemon.log_tail()}",
                                     status=500)
            if time.monotonic() > deadline:
                daemon.stop()
                raise PullprintError("daemon-timeout", f"{name} did not come up in {timeout:.0f} s:\n"
                                     f"{daemon.log_tail()}", status=500)
            time.sleep(0.05)
    return daemon


def _primary_group(user: str | None) -> int | None:
    return None if user is None else pwd.getpwnam(user).pw_gid
