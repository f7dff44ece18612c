"""The printer lock's fencing token is checked by its holder right before sending (real Redis)."""

import time

import pytest

from collector.printer_lock import PrinterBusy, PrinterLock
from pullprint import keys


def test_a_holder_paused_past_its_lease_finds_a_newer_token_and_must_not_send(redis):
    paused = PrinterLock(redis, "p1", "c1", lease_seconds=0.5)
    paused.acquire(0)
    paused._stop.set()  # paused (GC, SIGSTOP, a slow disk): nobody extends its lease
    successor = PrinterLock(redis, "p1", "c2", lease_seconds=5)
    successor.acquire(3)
    assert successor.token > paused.token
    assert paused.confirm() is False
    assert successor.confirm() is True
    paused.release()  # a late release by the stale holder leaves the successor's lock alone
    assert redis.exists(keys.printer_lock("p1"))
    successor.release()


def test_confirming_renews_the_lease_to_its_full_length(redis):
    holder = PrinterLock(redis, "p2", "c1", lease_seconds=2)
    holder.acquire(0)
    holder._stop.set()
    time.sleep(1.2)
    assert holder.confirm() is True
    assert redis.pttl(keys.printer_lock("p2")) > 1500
    holder.release()


def test_a_lock_nobody_holds_any_more_is_taken_back_under_a_new_token(redis):
    holder = PrinterLock(redis, "p3", "c1")
    holder.acquire(0)
    before = redis.get(keys.printer_lock("p3"))
    redis.flushdb()  # Redis restarted empty: nobody else has the printer (and the counter starts again)
    assert holder.confirm() is True
    after = redis.get(keys.printer_lock("p3"))
    assert after and after != before  # a fresh value: a holder from before the restart cannot match it
    with pytest.raises(PrinterBusy):
        PrinterLock(redis, "p3", "c2").acquire(0.2)
    holder.release()
    assert not redis.exists(keys.printer_lock("p3"))


def test_without_a_lock_there_is_nothing_to_fence(redis):
    assert PrinterLock(redis, "p4", "c1").confirm() is None
