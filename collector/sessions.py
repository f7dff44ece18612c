"""Terminal sessions in Redis (any collector serves any request), and login rate limiting with lockout."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pullprint import keys
from pullprint.credentials import new_secret, token_digest
from pullprint.errors import Locked, Unauthorized


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    printer: str
    created_at: float
    offline: bool = False


class SessionStore:
    def __init__(self, redis: Any, idle_seconds: int) -> None:
        self.redis = redis
        self.idle_seconds = idle_seconds

    def create(self, user: str, printer: str, *, offline: bool = False) -> Session:
        session = Session(new_secret(24), user, printer, time.time(), offline)
        record = {"user": user, "printer": printer, "created_at": session.created_at, "offline": offline}
        # Stored under a digest of the token: a Redis dump does not hand out live sessions.
        self.redis.set(keys.session(token_digest(session.token)), json.dumps(record), ex=self.idle_seconds)
        return session

    def get(self, token: str) -> Session:
        """The live session for `token`, its inactivity timer restarted; 401 when it ended."""
        key = keys.session(token_digest(token or ""))
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.expire(key, self.idle_seconds)
        raw, _ = pipe.execute()
        if not raw:
            raise Unauthorized("session-ended", "the session has ended; please log in again")
        record = json.loads(raw)
        return Session(token, record["user"], record["printer"], record["created_at"], record.get("offline", False))

    def delete(self, token: str) -> bool:
        return bool(self.redis.delete(keys.session(token_digest(token or ""))))


class LoginGuard:
    """Counts failed logins per subject (a terminal, a user name) and locks the subject out past a threshold."""

    def __init__(self, redis: Any, threshold: int, lockout_seconds: int) -> None:
        self.redis = redis
        self.threshold = threshold
        self.lockout_seconds = lockout_seconds

    def check(self, *subjects: str) -> None:
        for subject in subjects:
            key = keys.login_failures(subject)
            failures = self.redis.get(key)
            if failures is not None and int(failures) >= self.threshold:
                retry_after = max(1, int(self.redis.ttl(key)))
                raise Locked("locked", "too many failed attempts; try again later", retry_after=retry_after)

    def failed(self, *subjects: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for subject in subjects:
            key = keys.login_failures(subject)
            pipe.incr(key)
            pipe.expire(key, self.lockout_seconds)
        pipe.execute()

    def succeeded(self, *subjects: str) -> None:
        self.redis.delete(*(keys.login_failures(s) for s in subjects))
