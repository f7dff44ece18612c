"""Against a real Redis: sessions end after inactivity, one login throttle for the site, printer locks with fencing."""

import threading
import time

import pytest

from collector import membership
from collector.printer_lock import PrinterBusy, PrinterLock
from collector.redis_client import _Optional
from collector.sessions import SessionStore
from collector.state_mac import StateMac
from collector.throttle import SiteFailures
from pullprint import keys
from pullprint.errors import TooManyRequests, Unauthorized
from pullprint.throttle import LoginThrottle, MemoryFailures, login_limits


def test_session_lives_while_used_and_ends_after_inactivity(redis):
    store = SessionStore(redis, idle_seconds=2, signing_secret="cluster")
    session = store.create("alice", "p1", bound_to="t:t-1")
    for _ in range(3):  # used every second: the 2 s timer restarts each time (3 s in all)
        time.sleep(1.0)
        assert store.get(session.token).user == "alice"
    time.sleep(2.5)
    with pytest.raises(Unauthorized):
        store.get(session.token)


def test_session_token_is_not_stored_in_redis(redis):
    session = SessionStore(redis, 60, "cluster").create("alice", "p1", bound_to="t:t-1")
    assert not any(session.token in key for key in redis.keys("*"))


def test_forged_or_tampered_tokens_are_refused(redis):
    store = SessionStore(redis, 60, "cluster")
    token = store.create("alice", "p1", bound_to="t:t-1").token
    body, _, signature = token.partition(".")
    for bad in (token + "x", "x" + token, body + "." + signature[::-1], "", "a.b",
                SessionStore(redis, 60, "other cluster").create("alice", "p1", bound_to="t:t-1").token):
        with pytest.raises(Unauthorized):
            store.get(bad)


def test_sessions_and_lockout_keep_working_without_redis():
    import redis as redis_lib

    from pullprint.daemons import free_port

    dead = redis_lib.Redis(port=free_port(), socket_timeout=0.2, socket_connect_timeout=0.2, retry=None)
    store = SessionStore(dead, 60, "cluster", offline_max_seconds=1)
    session = store.create("alice", "p1", bound_to="t:t-1")  # signed: needs no Redis
    assert store.get(session.token).user == "alice"
    # The throttle goes on in this process's memory: Redis away is no way around it.
    throttle = LoginThrottle(SiteFailures(dead, MemoryFailures()))
    subjects = login_limits(terminal_failures=1).subjects(terminal="t-1", address=None, user=None)
    throttle.failed(throttle.admit(subjects))
    with pytest.raises(TooManyRequests):
        throttle.admit(subjects)
    _Optional.skip_until = 0.0
    time.sleep(1.1)
    with pytest.raises(Unauthorized):  # without Redis a signed token lives only offline_max_seconds
        store.get(session.token)


def test_logout_ends_the_session(redis):
    store = SessionStore(redis, 60, "cluster")
    session = store.create("bob", "p2", bound_to="a:10.0.0.1")
    assert store.delete(session.token)
    with pytest.raises(Unauthorized):
        store.get(session.token)
    assert not store.delete(session.token)  # already ended
    with pytest.raises(Unauthorized):  # and it stays ended: not taken for one its login could not record
        store.get(session.token)


def test_a_session_its_login_could_not_record_is_recorded_at_its_next_use(redis):
    store = SessionStore(redis, idle_seconds=2, signing_secret="cluster")
    young = store.create("carol", "p1", bound_to="t:t-1")
    redis.flushdb()  # as if the login's SET never reached Redis (slow link, Redis away or restarted empty)
    assert store.get(young.token).user == "carol"
    assert redis.keys("*"), "the session is recorded again"
    assert store.delete(young.token)  # so it can be logged out like any other
    with pytest.raises(Unauthorized):
        store.get(young.token)
    # One older than the inactivity timeout whose record is gone has timed out: ended.
    old = store.create("dave", "p1", bound_to="t:t-1")
    time.sleep(2.2)
    with pytest.raises(Unauthorized):
        store.get(old.token)


def test_the_site_shares_one_count_and_a_worker_keeps_its_own_when_redis_goes(redis):
    """Two collector workers (each with its memory) count in the same Redis; with Redis gone, each
    still remembers what it saw itself."""
    _Optional.skip_until = 0.0  # an earlier test's dead Redis must not make this process skip this one
    limits = login_limits(terminal_failures=3)
    subjects = limits.subjects(terminal="t-1", address="10.0.0.1", user="alice")
    first, second = MemoryFailures(), MemoryFailures()
    for memory in (first, second, first):
        throttle = LoginThrottle(SiteFailures(redis, memory))
        throttle.failed(throttle.admit(subjects))
    with pytest.raises(TooManyRequests) as info:  # 3 failures seen by the site: the 4th waits
        LoginThrottle(SiteFailures(redis, second)).admit(subjects)
    assert info.value.details["retry_after"] == 2
    assert redis.zcard(keys.login_throttle("t:t-1")) == 3 and redis.ttl(keys.login_throttle("t:t-1")) > 800
    # A user's success clears the user name (not the terminal) everywhere.
    assert redis.zcard(keys.login_throttle("u:alice")) == 3
    throttle = LoginThrottle(SiteFailures(redis, first))
    throttle.succeeded(throttle.admit(limits.subjects(terminal=None, address="10.0.0.2", user="alice")))
    assert redis.zcard(keys.login_throttle("u:alice")) == 0
    assert redis.zcard(keys.login_throttle("t:t-1")) == 3
    # Redis goes away: the first worker remembers its 2 failures of t-1, the second its 1.
    import redis as redis_lib

    from pullprint.daemons import free_port

    dead = redis_lib.Redis(port=free_port(), socket_timeout=0.2, socket_connect_timeout=0.2, retry=None)
    try:
        assert SiteFailures(dead, first).recent("t:t-1", time.time(), 900)[0] == 2
        assert SiteFailures(dead, second).recent("t:t-1", time.time(), 900)[0] == 1
    finally:
        _Optional.skip_until = 0.0


def test_printer_lock_serializes_and_fences(redis):
    first = PrinterLock(redis, "p1", "c1", lease_seconds=0.6)
    token1 = first.acquire(0)
    with pytest.raises(PrinterBusy):
        PrinterLock(redis, "p1", "c2").acquire(0.2)
    time.sleep(1.0)  # the keeper extends the lease while the job is going out
    assert redis.exists(keys.printer_lock("p1"))
    first.release()
    second = PrinterLock(redis, "p1", "c2")
    assert second.acquire(0) > token1
    second.release()


def test_lock_of_a_dead_holder_expires_and_the_next_token_is_higher(redis):
    dead = PrinterLock(redis, "p2", "c1", lease_seconds=0.5)
    dead_token = dead.acquire(0)
    dead._stop.set()  # the holder dies: nobody extends its lease any more
    started = time.monotonic()
    successor = PrinterLock(redis, "p2", "c2")
    token = successor.acquire(5)
    assert time.monotonic() - started < 2
    assert token > dead_token
    dead.release()  # a late release by the dead holder does not free the successor's lock
    assert redis.exists(keys.printer_lock("p2"))
    successor.release()


def test_lock_waiters_get_the_printer_one_at_a_time(redis):
    inside, overlaps = [], []

    def job(name):
        lock = PrinterLock(redis, "p3", name)
        lock.acquire(10)
        inside.append(name)
        if len(inside) > 1:
            overlaps.append(list(inside))
        time.sleep(0.05)
        inside.remove(name)
        lock.release()

    threads = [threading.Thread(target=job, args=(f"c{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_membership_expires_without_heartbeats(redis):
    seals = StateMac(b"\x11" * 32)
    membership.announce(redis, seals, "c1", "main", ttl_seconds=0.5)
    membership.announce(redis, seals, "c2", "main", ttl_seconds=5)
    assert membership.live_ids(redis, seals) == {"c1", "c2"}
    time.sleep(0.7)
    assert membership.live_ids(redis, seals) == {"c2"}
    assert membership.live_ids(redis, StateMac(b"\x22" * 32)) == set()  # sealed under another installation
