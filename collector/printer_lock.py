"""PrinterLock: output to one printer goes out one job at a time across the whole cluster.

The lock is a Redis key with a lease (PX) and a fencing token from a per-printer counter. A holder
that dies stops extending the lease, so the lock frees itself; the next holder's token is higher.
A printer cannot check tokens itself, so the holder does: right before each send it confirms
(atomically, renewing the lease) that the key still holds its own token. A holder that was paused
past its lease while another took the printer finds a newer token there and does not send.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from pullprint import keys
from pullprint.errors import PullprintError

_RELEASE = "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) else return 0 end"
_EXTEND = "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('PEXPIRE',KEYS[1],ARGV[2]) else return 0 end"


class PrinterBusy(PullprintError):
    status = 409


class PrinterLock:
    def __init__(self, redis: Any, printer_id: str, holder: str, *, lease_seconds: float = 15.0) -> None:
        self.redis = redis
        self.printer_id = printer_id
        self.holder = holder
        self.lease_ms = int(lease_seconds * 1000)
        self.token = 0
        self._value = ""
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    def acquire(self, wait_seconds: float) -> int:
        """Take the lock, waiting up to `wait_seconds`; returns the fencing token."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.02
        while True:
            if self._take():
                return self.token
            if time.monotonic() >= deadline:
                raise PrinterBusy("printer-busy", "the printer is busy with other jobs; try again shortly")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def confirm(self) -> bool | None:
        """Right before sending: is this holder's token still the printer's current one?

        True: it is, and the lease is renewed to its full length (or nobody held the printer, as
        after a Redis restart, and this holder took it back under a new token). False: another
        holder has the printer now; this one must not send. None: no lock was taken (Redis was
        away) or Redis cannot say now; the release's claim still keeps the job to one print.
        """
        if not self._value:
            return None
        key = keys.printer_lock(self.printer_id)
        try:
            if self.redis.register_script(_EXTEND)(keys=[key], args=[self._value, self.lease_ms]):
                return True
            if self.redis.exists(key):
                return False
            return self._take()
        except Exception:  # noqa: BLE001 - Redis trouble: the claim, not the lock, is what keeps one print
            return None

    def _take(self) -> bool:
        """One try at the lock, under a new token; the keeper extends the lease while it is held."""
        token = int(self.redis.incr(keys.printer_fence(self.printer_id)))
        value = json.dumps({"token": token, "holder": self.holder, "at": time.time()})
        if not self.redis.set(keys.printer_lock(self.printer_id), value, nx=True, px=self.lease_ms):
            return False
        self.token, self._value = token, value
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper = threading.Thread(target=self._keep, name=f"lock-{self.printer_id}", daemon=True)
            self._keeper.start()
        return True

    def _keep(self) -> None:
        # Extend the lease at a third of its length while the job is still going out.
        script = self.redis.register_script(_EXTEND)
        while not self._stop.wait(self.lease_ms / 3000):
            try:
                if not script(keys=[keys.printer_lock(self.printer_id)], args=[self._value, self.lease_ms]):
                    return
            except Exception:  # noqa: BLE001 - a Redis hiccup: the lease may lapse, the fence still holds
                continue

    def release(self) -> None:
        self._stop.set()
        if self._keeper:
            self._keeper.join(1)
        if self._value:
            try:
                self.redis.register_script(_RELEASE)(keys=[keys.printer_lock(self.printer_id)], args=[self._value])
            except Exception:  # noqa: BLE001 - the lease expires by itself
                pass

    def __enter__(self) -> PrinterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
