"""The fleet poller: every interval, this collector polls its share of its site's printers.

Who polls what: rendezvous (highest-random-weight) hashing of printer id over the live collectors
spreads printers evenly with no coordination traffic, and moves only 1/n of them when a collector
joins or leaves. Hashing alone cannot promise "exactly one poll per cycle" while two collectors
briefly disagree about who is alive, so each poll is also claimed with `SET poll_owner(id) NX PX`
(expiring just before the next cycle): of two collectors that both think they own a printer, one
wins. A printer whose newest reading is older than `takeover_after` cycles (its owner died and has
not yet expired from membership) is claimed by whoever gets there first, through the same key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from collector.health.cache import decode_reading, store_health
from collector.health.model import PrinterHealth
from collector.health.snmp import DEFAULT_CONCURRENCY, HealthClient, SnmpTarget
from collector.state_mac import StateMac
from pullprint import keys
from pullprint.log import new_request_id, request_scope

log = logging.getLogger("pullprint.collector.health")

Printer = Mapping[str, Any]
ReportFn = Callable[[str, PrinterHealth], None]


def rendezvous_owner(printer_id: str, members: Iterable[str]) -> str | None:
    """The member with the highest hash(member, printer) weight (stable, even, minimal movement)."""
    best, best_weight = None, b""
    for member in members:
        weight = hashlib.blake2b(f"{member}\x00{printer_id}".encode(), digest_size=8).digest()
        if best is None or weight > best_weight:
            best, best_weight = member, weight
    return best


class HealthPoller:
    """Polls this collector's share of the site's printers every `interval` seconds.

    printers: a callable returning the current printer records (the collector's view from the analyst).
    report(printer_id, health): called when a printer's state changes (and on its first reading).
    """

    def __init__(self, collector_id: str, redis: Any, printers: Callable[[], Iterable[Printer]], *,
                 site: str | None = None, interval: float = 15.0, report: ReportFn | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, supplies_every: int = 10, takeover_after: float = 3.0,
                 members: Callable[[], Iterable[str]] | None = None, seals: StateMac | None = None) -> None:
        self.collector_id = collector_id
        self.redis = redis
        self.printers = printers
        self.site = site
        self.interval = interval
        self.report = report
        self.concurrency = concurrency
        self.supplies_every = max(1, supplies_every)
        self.takeover_after = takeover_after
        self.members = members or (lambda: [collector_id])
        self.seals = seals  # collector/state_mac.py: readings decide releases, so they are sealed
        self.cycles = 0
        self.last_cycle: dict[str, Any] = {}
        self.last_readings: dict[str, PrinterHealth] = {}  # the readings of the last cycle (its printers)
        self._known: dict[str, PrinterHealth] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: HealthClient | None = None

    # --- one cycle -----------------------------------------------------------------------
    def _site_printers(self) -> list[Printer]:
        return [p for p in self.printers()
                if (self.site is None or p.get("site") in (None, self.site)) and p.get("in_service", True)
                and SnmpTarget.from_printer(p) is not None]

    def _claim(self, candidates: list[Printer]) -> list[Printer]:
        if not candidates:
            return []
        ttl_ms = max(100, int(self.interval * 1000 * 0.9))  # free again before the next cycle starts
        pipe = self.redis.pipeline(transaction=False)
        for printer in candidates:
            pipe.set(keys.poll_owner(str(printer["id"])), self.collector_id, nx=True, px=ttl_ms)
        return [p for p, won in zip(candidates, pipe.execute(), strict=True) if won]

    async def run_cycle(self) -> dict[str, PrinterHealth]:
        """Claim, poll, store and report once; returns the readings this collector took."""
        started = time.monotonic()
        if self._client is None:
            self._client = HealthClient()
        printers = self._site_printers()
        members = set(self.members()) | {self.collector_id}
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for printer in printers:
            pipe.get(keys.printer_health(str(printer["id"])))
        cached: dict[str, PrinterHealth | None] = {}
        for printer, raw in zip(printers, pipe.execute(), strict=True):
            cached[str(printer["id"])] = decode_reading(keys.printer_health(str(printer["id"])), raw, self.seals)
        candidates = []
        for printer in printers:
            pid = str(printer["id"])
            reading = cached[pid]
            if reading is None:  # never read: give its hash owner a few cycles before taking over
                orphaned = self.cycles >= self.takeover_after
            else:
                orphaned = now - reading.polled_at > self.takeover_after * self.interval
            if orphaned or rendezvous_owner(pid, members) == self.collector_id:
                candidates.append(printer)
        claimed = self._claim(candidates)
        targets = [t for t in (SnmpTarget.from_printer(p) for p in claimed) if t is not None]
        self.cycles += 1
        full = (self.cycles - 1) % self.supplies_every == 0

        def wants_supplies(target: SnmpTarget) -> bool:
            previous = cached.get(target.printer_id)
            return full or previous is None or previous.supplies_at is None

        readings = await self._client.poll_many(
            targets, concurrency=self.concurrency, supplies=wants_supplies,
            previous={pid: h for pid, h in cached.items() if h is not None})
        pipe = self.redis.pipeline(transaction=False)
        for pid, health in readings.items():
            store_health(self.redis, health, previous=cached.get(pid), pipeline=pipe, seals=self.seals)
        pipe.execute()
        changed = [pid for pid, h in readings.items() if not h.same_state(cached.get(pid) or self._known.get(pid))
                   or h.rebooted]
        self._known.update(readings)
        if self.report is not None:
            for pid in changed:
                try:
                    self.report(pid, readings[pid])
                except Exception:  # the analyst being away must not stop polling
                    log.exception("health report for %s failed", pid)
        self.last_readings = dict(readings)
        self.last_cycle = {"printers": len(printers), "candidates": len(candidates), "polled": len(readings),
                           "unreachable": sum(not h.reachable for h in readings.values()),
                           "changed": len(changed), "seconds": round(time.monotonic() - started, 3),
                           "at": time.time()}
        return readings

    # --- background thread --------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"health-poller-{self.collector_id}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                with request_scope(f"health-{new_request_id()}"):  # one id per cycle, on every line of it
                    try:
                        loop.run_until_complete(self.run_cycle())
                    except Exception:  # Redis away or a bad printer record: log, try again next cycle
                        log.exception("health poll cycle failed")
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
