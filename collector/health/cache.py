"""Printer health readings in Redis, and the synchronous release-time check a Flask worker calls.

Keys (pullprint.keys): `printer_health(id)` holds the newest reading as JSON; `printer_health_history(id)`
is a list of the last HISTORY_LENGTH readings, newest first. The reading's TTL is generous (an hour):
freshness is judged from its `polled_at`, never from whether the key exists.

A reading decides releases (refused: paper out; allowed: healthy), so collectors seal it
(`seals`, collector/state_mac.py: an HMAC only collectors can make); a reading that does not verify
is ignored (logged once) and the printer is asked again. Only tests leave `seals` out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

from collector.health.model import PrinterHealth, note_reboot
from collector.health.policy import HealthVerdict, judge, monitored
from collector.health.snmp import HealthClient, SnmpTarget
from collector.state_mac import StateMac, unverified
from pullprint import keys

HISTORY_LENGTH = 50
READING_TTL_SECONDS = 3600


def decode_reading(key: str, raw: Any, seals: StateMac | None) -> PrinterHealth | None:
    """The reading stored under `key`; None when absent, planted (bad MAC) or from an incompatible version."""
    if raw is None:
        return None
    if seals is None:
        raw = unverified(raw.decode() if isinstance(raw, bytes) else str(raw))  # tests and tools
    else:
        raw = seals.open(key, raw)
        if raw is None:
            return None
    try:
        return PrinterHealth.from_json(raw)
    except (ValueError, TypeError, KeyError):
        return None  # a reading from an incompatible version: poll again


def _encode(key: str, health: PrinterHealth, seals: StateMac | None) -> str:
    text = health.to_json()
    return seals.seal(key, text) if seals is not None else text


def read_health(redis: Any, printer_id: str, *, seals: StateMac | None = None) -> PrinterHealth | None:
    key = keys.printer_health(printer_id)
    return decode_reading(key, redis.get(key), seals)


def read_history(redis: Any, printer_id: str, limit: int = HISTORY_LENGTH, *,
                 seals: StateMac | None = None) -> list[PrinterHealth]:
    key = keys.printer_health_history(printer_id)
    readings = (decode_reading(key, raw, seals) for raw in redis.lrange(key, 0, limit - 1))
    return [reading for reading in readings if reading is not None]


def store_health(redis: Any, health: PrinterHealth, *, previous: PrinterHealth | None = None,
                 pipeline: Any = None, seals: StateMac | None = None) -> PrinterHealth:
    """Store a reading as the newest one and in the capped history; notes a reboot vs `previous`.

    Pass `previous` when you have it (saves a read); otherwise the stored reading is used.
    A reading older than the stored one is not written as newest (two pollers racing)."""
    if previous is None and pipeline is None:
        previous = read_health(redis, health.printer_id, seals=seals)
    note_reboot(health, previous)
    pipe = pipeline if pipeline is not None else redis.pipeline(transaction=False)
    if previous is None or previous.polled_at <= health.polled_at:
        newest = keys.printer_health(health.printer_id)
        pipe.set(newest, _encode(newest, health, seals), ex=READING_TTL_SECONDS)
    history = keys.printer_health_history(health.printer_id)
    pipe.lpush(history, _encode(history, health, seals))
    pipe.ltrim(history, 0, HISTORY_LENGTH - 1)
    pipe.expire(history, READING_TTL_SECONDS * 24)
    if pipeline is None:
        pipe.execute()
    return health


class _ThreadPoller:
    """A per-thread event loop and HealthClient: a Flask worker thread reuses them across requests
    (creating a pysnmp engine costs ~75 ms; the loop must stay the one the client was made on)."""

    _local = threading.local()

    @classmethod
    def poll(cls, target: SnmpTarget, previous: PrinterHealth | None, timeout: float) -> PrinterHealth:
        state = cls._local
        if getattr(state, "loop", None) is None or state.loop.is_closed():
            state.loop = asyncio.new_event_loop()
            state.client = state.loop.run_until_complete(_make_client())
        loop: asyncio.AbstractEventLoop = state.loop
        client: HealthClient = state.client
        started = time.monotonic()
        try:
            return loop.run_until_complete(asyncio.wait_for(client.poll_one(target, previous), timeout))
        except TimeoutError:
            return PrinterHealth(target.printer_id, reachable=False, polled_at=time.time(),
                                 error=f"no answer within {timeout:.1f} s",
                                 duration=round(time.monotonic() - started, 4))


async def _make_client() -> HealthClient:
    return HealthClient()


def poll_now(printer: Mapping[str, Any], *, timeout: float = 1.0,
             previous: PrinterHealth | None = None) -> PrinterHealth | None:
    """A quick on-demand reading bounded by `timeout` seconds (None when SNMP is not configured)."""
    target = SnmpTarget.from_printer(printer)
    if target is None:
        return None
    # never let the client's retry schedule outlive the caller's budget
    per_try = max(0.05, min(target.timeout, timeout / (target.retries + 1)))
    target = SnmpTarget(**{**target.__dict__, "timeout": per_try})
    return _ThreadPoller.poll(target, previous, timeout)


def check_printer(printer: Mapping[str, Any], redis: Any, *, max_age: float = 30.0,
                  timeout: float = 1.0, now: float | None = None, seals: StateMac | None = None) -> HealthVerdict:
    """May a job be released to `printer` now? Synchronous, for a Flask worker thread.

    Uses the cached reading when younger than `max_age` seconds, otherwise polls the printer once
    (bounded by `timeout`), stores that reading, and judges it. Never raises for SNMP or Redis
    trouble: an unanswerable question follows the printer's `unreachable_policy`.
    """
    if printer.get("in_service") is False or not monitored(printer):
        return judge(None, printer, now=time.time(), max_age=max_age)
    cached: PrinterHealth | None = None
    try:
        cached = read_health(redis, str(printer["id"]), seals=seals)
    except Exception:  # noqa: BLE001 - Redis down: fall back to asking the printer
        cached = None
    current = now if now is not None else time.time()
    if cached is not None and current - cached.polled_at <= max_age:
        return judge(cached, printer, now=current, max_age=max_age)
    fresh = poll_now(printer, timeout=timeout, previous=cached)
    if fresh is not None:
        try:
            store_health(redis, fresh, previous=cached, seals=seals)
        except Exception:  # noqa: BLE001, S110 - a cache write failure must not block a release
            pass
    return judge(fresh, printer, now=time.time(), max_age=None)  # just read: fresh by definition
