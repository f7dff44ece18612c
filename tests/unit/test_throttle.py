"""The login throttle's policy (pullprint/throttle.py) with the in-process store: free failures, doubling waits,
429 then 423 for terminals, never a lockout for a user name, reservations against parallel bursts."""

from __future__ import annotations

import threading

import pytest

from pullprint.errors import Locked, TooManyRequests
from pullprint.throttle import Limit, LoginThrottle, MemoryFailures, judge, login_limits


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(MemoryFailures(), clock)


LIMITS = login_limits()


def fail(throttle: LoginThrottle, **who: str | None) -> None:
    throttle.failed(throttle.admit(LIMITS.subjects(**{"terminal": None, "address": None, "user": None, **who})))


def refusal(throttle: LoginThrottle, **who: str | None) -> TooManyRequests | Locked:
    with pytest.raises((TooManyRequests, Locked)) as info:
        throttle.admit(LIMITS.subjects(**{"terminal": None, "address": None, "user": None, **who}))
    return info.value


def test_the_wait_doubles_past_the_free_failures_up_to_the_cap() -> None:
    limit = Limit("terminal", free=3, base=2, cap=60)
    assert [limit.wait(n) for n in range(10)] == [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]
    assert limit.wait(10_000) == 60  # no overflow, however many


def test_judge_counts_from_the_last_failure() -> None:
    limit = Limit("terminal", free=1, base=2, cap=8)
    assert not judge(limit, 0, 0.0, 100.0).blocked
    assert judge(limit, 1, 99.5, 100.0).retry_after == 2  # 1.5 s left, rounded up
    assert not judge(limit, 1, 98.0, 100.0).blocked
    capped = judge(limit, 5, 100.0, 100.0)
    assert (capped.retry_after, capped.locked) == (8, True)
    assert judge(Limit("user", 1, cap=8, locks=False), 5, 100.0, 100.0).locked is False


def test_a_terminal_is_slowed_then_locked(throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(10):
        fail(throttle, terminal="t-1", address="10.0.0.1")
    slowed = refusal(throttle, terminal="t-1", address="10.0.0.1")
    assert (slowed.status, slowed.details["retry_after"]) == (429, 2)
    for _ in range(8):
        clock.now += refusal(throttle, terminal="t-1", address="10.0.0.1").details["retry_after"]
        fail(throttle, terminal="t-1", address="10.0.0.1")
    locked = refusal(throttle, terminal="t-1", address="10.0.0.1")
    assert (locked.status, locked.code, locked.details["retry_after"]) == (423, "locked", 300)
    # Another terminal behind another address is not affected.
    throttle.admit(LIMITS.subjects(terminal="t-2", address="10.0.0.2", user=None))


def test_a_refused_attempt_is_not_a_failure(throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(10):
        fail(throttle, terminal="t-1")
    for _ in range(50):  # hammering while refused does not make the wait longer
        assert refusal(throttle, terminal="t-1").details["retry_after"] == 2
    clock.now += 2
    throttle.admit(LIMITS.subjects(terminal="t-1", address=None, user=None))


def test_a_user_name_is_slowed_never_locked_and_a_success_clears_it(throttle: LoginThrottle, clock: Clock) -> None:
    # An attacker guessing alice's PIN as fast as allowed, from ever new addresses, for hours.
    waits, guesses = [], 0
    for n in range(400):
        try:
            fail(throttle, user="alice", address=f"10.{n // 250}.{n % 250}.1")
            guesses += 1
        except Locked:
            raise AssertionError("a user name must never be locked out") from None
        except TooManyRequests as exc:
            waits.append(exc.details["retry_after"])
            clock.now += exc.details["retry_after"]
    assert max(waits) == 60 and waits[-1] == 60
    # The free 5, the 5 of the ramp (2 s … 32 s), then one a minute.
    assert guesses <= 10 + (clock.now - 1_000_000.0) / 60
    # The real user, at most a minute later, gets in; the success clears the name.
    clock.now += 60
    throttle.succeeded(throttle.admit(LIMITS.subjects(terminal="t-9", address="10.0.0.3", user="alice")))
    for _ in range(5):
        fail(throttle, user="alice", address="10.0.0.3")


def test_success_does_not_wipe_a_terminals_failures(throttle: LoginThrottle) -> None:
    """An attacker holding one good badge must not reset the count between guesses."""
    for _ in range(9):
        fail(throttle, terminal="t-1")
    throttle.succeeded(throttle.admit(LIMITS.subjects(terminal="t-1", address=None, user=None)))
    fail(throttle, terminal="t-1")
    assert refusal(throttle, terminal="t-1").status == 429


def test_failures_leave_the_window(throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(10):
        fail(throttle, terminal="t-1")
    clock.now += 901
    for _ in range(10):
        fail(throttle, terminal="t-1")


def test_without_a_terminal_the_address_stands_for_it(throttle: LoginThrottle) -> None:
    subjects = LIMITS.subjects(terminal=None, address="10.0.0.1", user="bob")
    assert [(s.limit.kind, s.key) for s in subjects] == [("terminal", "n:10.0.0.1"), ("address", "a:10.0.0.1"),
                                                         ("user", "u:bob")]
    for _ in range(10):
        fail(throttle, address="10.0.0.1")
    assert refusal(throttle, address="10.0.0.1").status == 429
    # Enrolled terminals at that address are judged by the address's own (higher) limit.
    throttle.admit(LIMITS.subjects(terminal="t-1", address="10.0.0.1", user=None))


def test_an_address_is_limited_across_its_terminals(throttle: LoginThrottle) -> None:
    for n in range(20):
        fail(throttle, terminal=f"t-{n % 4}", address="10.0.0.1")
    assert refusal(throttle, terminal="t-0", address="10.0.0.1").status == 429
    throttle.admit(LIMITS.subjects(terminal="t-0", address="10.0.0.2", user=None))


def test_reservations_stop_a_parallel_burst(clock: Clock) -> None:
    """50 guesses for one name at once: only the free ones get to their PIN check."""
    throttle = LoginThrottle(MemoryFailures(), clock)
    admitted, barrier = [], threading.Barrier(50)

    def guess(n: int) -> None:
        barrier.wait()
        try:
            admitted.append(throttle.admit(LIMITS.subjects(terminal=f"t-{n}", address=f"10.1.0.{n}", user="alice")))
        except TooManyRequests:
            pass

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5


def test_the_memory_is_bounded() -> None:
    memory = MemoryFailures(max_keys=100)
    for n in range(1000):
        memory.add(f"u:invented{n}", "e", 1.0, 900)
    assert len(memory._entries) == 100
    assert memory.recent("u:invented999", 2.0, 900) == (1, 1.0)
    assert memory.recent("u:invented0", 2.0, 900) == (0, 0.0)
