"""The collector's login throttle: failures in Redis (one count for the whole site), mirrored in memory.

Each failure is also kept in this process's `MemoryFailures`, so when Redis goes away mid-attack
the worker still remembers what it saw and goes on limiting on its own (per process, see
pullprint/throttle.py); when Redis answers, its count (every collector's) is the one that decides.
"""

from __future__ import annotations

from typing import Any

from collector.config import CollectorConfig
from collector.redis_client import optional
from pullprint import keys
from pullprint.throttle import LoginLimits, LoginThrottle, MemoryFailures, login_limits


class RedisFailures:
    """Failures as a sorted set per subject (member: the attempt's entry id, score: its time)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def recent(self, key: str, now: float, window: float) -> tuple[int, float]:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(keys.login_throttle(key), "-inf", now - window)
        pipe.zcard(keys.login_throttle(key))
        pipe.zrange(keys.login_throttle(key), -1, -1, withscores=True)
        _, count, last = pipe.execute()
        return int(count), float(last[0][1]) if last else 0.0

    def add(self, key: str, entry: str, now: float, window: float) -> tuple[int, float]:
        name = keys.login_throttle(key)
        pipe = self.redis.pipeline(transaction=True)  # what was there before, and the new one, atomically
        pipe.zremrangebyscore(name, "-inf", now - window)
        pipe.zcard(name)
        pipe.zrange(name, -1, -1, withscores=True)
        pipe.zadd(name, {entry: now})
        pipe.expire(name, int(window) + 1)
        _, count, last, _, _ = pipe.execute()
        return int(count), float(last[0][1]) if last else 0.0

    def discard(self, key: str, entry: str) -> None:
        self.redis.zrem(keys.login_throttle(key), entry)

    def clear(self, key: str) -> None:
        self.redis.delete(keys.login_throttle(key))


class SiteFailures:
    """Redis when it answers, this process's memory when it does not; every failure goes to both.

    Redis is optional here (collector/redis_client.py `optional`): after one call failed or answered
    slowly, logins skip it for a moment rather than each paying the wait several times over.
    """

    def __init__(self, redis: Any, memory: MemoryFailures) -> None:
        self.shared = RedisFailures(redis)
        self.memory = memory

    def _shared(self, call: str, *args: Any) -> Any:
        return optional("login throttle", lambda: getattr(self.shared, call)(*args))

    def recent(self, key: str, now: float, window: float) -> tuple[int, float]:
        shared = self._shared("recent", key, now, window)
        return shared if shared is not None else self.memory.recent(key, now, window)

    def add(self, key: str, entry: str, now: float, window: float) -> tuple[int, float]:
        local = self.memory.add(key, entry, now, window)
        shared = self._shared("add", key, entry, now, window)
        return shared if shared is not None else local

    def discard(self, key: str, entry: str) -> None:
        self.memory.discard(key, entry)
        self._shared("discard", key, entry)

    def clear(self, key: str) -> None:
        self.memory.clear(key)
        self._shared("clear", key)


def limits_of(config: CollectorConfig) -> LoginLimits:
    return login_limits(terminal_failures=config.login_failures_per_terminal,
                        address_failures=config.login_failures_per_address,
                        user_failures=config.login_failures_per_user, window=config.login_window_seconds,
                        lockout=config.login_lockout_seconds, user_max_delay=config.login_user_max_delay_seconds)


def site_throttle(redis: Any, memory: MemoryFailures) -> LoginThrottle:
    """The throttle of this worker: the site's count in Redis, this process's `memory` beside it."""
    return LoginThrottle(SiteFailures(redis, memory))
