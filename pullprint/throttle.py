"""Login throttling: the policy that slows and locks out guessing, and the failure stores it reads.

Every login attempt names its subjects: the terminal it comes from (an enrolled terminal's id, or
the source address of an unenrolled client), the source address, and, for PIN logins, the user name
typed (known or not, so that no answer says which names exist). Each subject's failures within its
limit's `window` decide whether the next attempt may go ahead at all:

    failures < free       it goes ahead
    failures >= free      it waits `base * 2**(failures - free)` seconds after the last failure, at
                          most `cap`: until then the answer is 429 with `retry_after`
    the wait is at `cap`  423 (locked) instead, where the limit `locks` (terminals, addresses)

A user name is never locked (its limit does not lock and its cap is short), and a success clears
it: a stranger typing someone's name can slow that person's PIN login by at most `cap` seconds,
never keep them out, and the badge is never slowed by a name. Terminals and addresses forget their
failures only as the failures leave the window, so that one good badge cannot wipe the count
between guesses. Limits that `reserve` count an attempt before its credentials are checked (and
take it back when it succeeds), so parallel requests cannot guess past the limit in one burst.

The collector keeps failures in Redis (one count for the site) with `MemoryFailures` beside it
for when Redis is away (per process: each worker counts its own); the analyst keeps them in SQL.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pullprint.errors import Locked, PullprintError, TooManyRequests

# Documented defaults (collector.config and analyst.config name them login_*).
TERMINAL_FAILURES = 10     # per terminal: a busy station sees a few typos, not ten in 15 minutes
ADDRESS_FAILURES = 20      # per source address: one address may front several stations (NAT)
USER_FAILURES = 5          # per user name typed, PIN logins only
WINDOW_SECONDS = 900.0     # failures are remembered this long
BASE_SECONDS = 2.0         # the first wait past the free failures; each further failure doubles it
LOCKOUT_SECONDS = 300.0    # the longest wait of a terminal or an address: 423 while there
USER_MAX_DELAY_SECONDS = 60.0  # the longest wait of a user name: 429, never a lockout


@dataclass(frozen=True)
class Limit:
    kind: str                       # "terminal", "address", "user": also the prefix of its subjects' keys
    free: int                       # failures within `window` that cost nothing
    window: float = WINDOW_SECONDS
    base: float = BASE_SECONDS
    cap: float = LOCKOUT_SECONDS
    locks: bool = True              # at `cap` the answer is 423 (locked); False: 429 at most
    clears_on_success: bool = False
    reserve: bool = False

    def wait(self, failures: int) -> float:
        """How long after the last failure the next attempt must wait, given `failures` in the window."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - self.free, 62))


@dataclass(frozen=True)
class Subject:
    limit: Limit
    key: str  # e.g. "t:t-4f1c…", "a:10.0.3.7", "u:alice"


@dataclass(frozen=True)
class LoginLimits:
    terminal: Limit
    address: Limit
    user: Limit

    def subjects(self, *, terminal: str | None, address: str | None, user: str | None) -> list[Subject]:
        """What one login attempt counts against: its terminal, its address, its user name.

        An unenrolled client's terminal is its address ("n:…", the unenrolled clients there, under the
        terminal's limit), beside the address itself ("a:…", every client there, enrolled or not).
        """
        found: list[Subject] = []
        if terminal:
            found.append(Subject(self.terminal, f"t:{terminal}"))
        elif address:
            found.append(Subject(self.terminal, f"n:{address}"))
        if address:
            found.append(Subject(self.address, f"a:{address}"))
        if user is not None:
            found.append(Subject(self.user, f"u:{user}"))
        return found


def login_limits(*, terminal_failures: int = TERMINAL_FAILURES, address_failures: int = ADDRESS_FAILURES,
                 user_failures: int = USER_FAILURES, window: float = WINDOW_SECONDS,
                 lockout: float = LOCKOUT_SECONDS, user_max_delay: float = USER_MAX_DELAY_SECONDS,
                 base: float = BASE_SECONDS) -> LoginLimits:
    """The three limits of a login, from a service's settings."""
    return LoginLimits(
        terminal=Limit("terminal", terminal_failures, window, base, lockout),
        address=Limit("address", address_failures, window, base, lockout),
        user=Limit("user", user_failures, window, base, user_max_delay, locks=False, clears_on_success=True,
                   reserve=True))


@dataclass(frozen=True)
class Verdict:
    retry_after: int = 0  # whole seconds; 0: go ahead
    locked: bool = False

    @property
    def blocked(self) -> bool:
        return self.retry_after > 0


def judge(limit: Limit, failures: int, last_failure: float, now: float) -> Verdict:
    """May an attempt go ahead now, with `failures` in the window, the last one at `last_failure`?"""
    wait = limit.wait(failures)
    if wait <= 0:
        return Verdict()
    remaining = last_failure + wait - now
    if remaining <= 0:
        return Verdict()
    return Verdict(max(1, math.ceil(remaining)), locked=limit.locks and wait >= limit.cap)


def refusal(verdict: Verdict) -> PullprintError:
    """The answer to a blocked attempt: the same whichever subject blocked it (no name is confirmed)."""
    if verdict.locked:
        return Locked("locked", f"too many failed attempts; locked for {verdict.retry_after} s",
                      retry_after=verdict.retry_after)
    return TooManyRequests("too-many-attempts", f"too many failed attempts; try again in {verdict.retry_after} s",
                           retry_after=verdict.retry_after)


class FailureStore(Protocol):
    """Where failures are kept: each is an entry (an id and a time) under a subject's key."""

    def recent(self, key: str, now: float, window: float) -> tuple[int, float]:
        """(failures within the window, the time of the last one, 0.0 when none)."""
        ...

    def add(self, key: str, entry: str, now: float, window: float) -> tuple[int, float]:
        """Record a failure; returns what `recent` gave just before it (atomically, where it can)."""
        ...

    def discard(self, key: str, entry: str) -> None: ...

    def clear(self, key: str) -> None: ...


@dataclass
class Attempt:
    """One admitted login attempt: its subjects and the failures it reserved up front."""

    subjects: list[Subject]
    now: float
    entry: str = field(default_factory=lambda: secrets.token_hex(8))
    reserved: list[Subject] = field(default_factory=list)


class LoginThrottle:
    """The policy applied to a store: `admit` before the credentials are checked, then `failed`,
    `succeeded` or `abandoned` (the check never happened: an error, or another service said no)."""

    def __init__(self, store: FailureStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def admit(self, subjects: Iterable[Subject]) -> Attempt:
        """An attempt for `subjects`, or the refusal (429 / 423 with retry_after) of the most blocked one."""
        attempt = Attempt(list(subjects), self.clock())
        worst = Verdict()
        for subject in attempt.subjects:
            limit = subject.limit
            if limit.reserve:
                failures, last = self.store.add(subject.key, attempt.entry, attempt.now, limit.window)
                attempt.reserved.append(subject)
            else:
                failures, last = self.store.recent(subject.key, attempt.now, limit.window)
            verdict = judge(limit, failures, last, attempt.now)
            if (verdict.locked, verdict.retry_after) > (worst.locked, worst.retry_after):
                worst = verdict
        if worst.blocked:
            self.abandoned(attempt)  # a refused attempt is not a failure: waiting it out must work
            raise refusal(worst)
        return attempt

    def failed(self, attempt: Attempt) -> None:
        for subject in attempt.subjects:
            if subject not in attempt.reserved:
                self.store.add(subject.key, attempt.entry, self.clock(), subject.limit.window)

    def succeeded(self, attempt: Attempt) -> None:
        for subject in attempt.subjects:
            if subject.limit.clears_on_success:
                self.store.clear(subject.key)
            elif subject in attempt.reserved:
                self.store.discard(subject.key, attempt.entry)

    def abandoned(self, attempt: Attempt) -> None:
        for subject in attempt.reserved:
            self.store.discard(subject.key, attempt.entry)


class MemoryFailures:
    """Failures in this process's memory: the limiter that still works with Redis and the analyst away.

    Per process, by nature: with W workers on N collectors an attacker spreading guesses gets up to
    N×W times the free failures. At most `max_keys` subjects are kept (the oldest go first), so that
    a stream of invented user names cannot grow it without bound.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, list[tuple[float, str]]] = OrderedDict()

    def _live(self, key: str, now: float, window: float) -> list[tuple[float, str]]:
        entries = [e for e in self._entries.get(key, ()) if e[0] > now - window]
        if entries:
            self._entries[key] = entries
        else:
            self._entries.pop(key, None)
        return entries

    def recent(self, key: str, now: float, window: float) -> tuple[int, float]:
        with self._lock:
            entries = self._live(key, now, window)
            return len(entries), max((t for t, _ in entries), default=0.0)

    def add(self, key: str, entry: str, now: float, window: float) -> tuple[int, float]:
        with self._lock:
            entries = self._live(key, now, window)
            before = len(entries), max((t for t, _ in entries), default=0.0)
            self._entries[key] = [*entries, (now, entry)]
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
            return before

    def discard(self, key: str, entry: str) -> None:
        with self._lock:
            if key in self._entries:
                self._entries[key] = [e for e in self._entries[key] if e[1] != entry]

    def clear(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
