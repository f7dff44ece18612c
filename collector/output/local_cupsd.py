"""The collector's own cupsd for ipp/ipps/lpd output: started once per node, watched, restarted on the same port.

The collector's main process starts it before the gunicorn workers and hands them its address
(``PULLPRINT_COLLECTOR_CUPS_SERVER``), so every worker and the housekeeping share one cupsd. It
runs in the collector's process group (a SIGKILL of the node takes it down too) and as the
collector's own user: under a service user with a 0700 spool, cupsd runs its backends as that
user, who owns the tree. It never gets the pullprint backend: its queues only print.

A cupsd that dies (Debian's 2.4.2-3+deb12u10 segfaults on some job attributes, docs/cups.md) is
restarted on its old port, after any saved job that would crash it again is cancelled.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from cups_backend.doctor import cancel_poison_jobs, crash_culprit, find_poison_jobs
from pullprint.cupsd import PrivateCupsd
from pullprint.daemons import free_port

log = logging.getLogger(__name__)
RETRY_SECONDS = 10.0  # between attempts to start a cupsd that would not start


class LocalCupsd:
    """One private cupsd under `state_dir`, kept running by `check()`."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.port = port or free_port()
        self.cupsd: PrivateCupsd | None = None
        self.restarts = 0
        self._next_try = 0.0

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.cupsd = PrivateCupsd.start(self.state_dir, self.port,
                                        new_session=False)

    def check(self) -> bool:
        """Restart cupsd if it died; True when it is running afterwards."""
        if self.cupsd is not None and self.cupsd.alive():
            return True
        if time.monotonic() < self._next_try:
            return False
        if self.cupsd is not None:
            log.error("the local cupsd for ipp/lpd output died (exit %s)%s; restarting it",
                      self.cupsd.daemon.process.returncode, _culprit(self.state_dir))
        for message in _cancel_poison(self.state_dir):
            log.error("%s", message)
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 - ipp/lpd releases answer "printer-unreachable" meanwhile
            log.error("the local cupsd for ipp/lpd output could not start: %s", exc)
            self.cupsd = None
            self._next_try = time.monotonic() + RETRY_SECONDS
            return False
        self.restarts += 1
        return True

    def stop(self) -> None:
        if self.cupsd is not None:
            self.cupsd.stop()


def _culprit(state_dir: Path) -> str:
    found = crash_culprit(state_dir / "log", request_root=state_dir / "spool")
    return f"; {found}" if found else ""


def _cancel_poison(state_dir: Path) -> list[str]:
    spool = state_dir / "spool"
    if not spool.exists():
        return []
    return cancel_poison_jobs(find_poison_jobs(spool), cups_server=None, request_root=spool)
