"""Terminal sessions (any collector serves any request), and login rate limiting with lockout.

A session token is signed (HMAC under a key derived from the cluster token), so every collector
can check it on its own. Redis adds what a signature cannot: the inactivity timeout and logout.
When Redis is away, a validly signed token is accepted up to `offline_max_seconds` after it was
issued, so terminals keep working; lockout counting then pauses (the analyst still limits PINs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pullprint import keys
from pullprint.credentials import token_digest
from pullprint.errors import Locked, Unauthorized

log = logging.getLogger(__name__)
ENDED = ("session-ended", "the session has ended; please log in again")


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    printer: str
    created_at: float
    offline: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionStore:
    def __init__(self, redis: Any, idle_seconds: int, signing_secret: str, offline_max_seconds: int = 600) -> None:
        self.redis = redis
        self.idle_seconds = idle_seconds
        self.offline_max_seconds = offline_max_seconds
        self._key = hmac.new(signing_secret.encode(), b"pullprint session v1", hashlib.sha256).digest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def create(self, user: str, printer: str, *, offline: bool = False) -> Session:
        created = time.time()
        record = {"u": user, "p": printer, "t": created, "o": offline, "n": secrets.token_hex(8)}
        body = _b64(json.dumps(record, separators=(",", ":")).encode())
        token = f"{body}.{self._sign(body)}"
        try:
            self.redis.set(keys.session(token_digest(token)), "1", ex=self.idle_seconds)
        except Exception as exc:  # noqa: BLE001 - the signed token stands on its own for a while
            log.warning("session not recorded in redis (%s); the signed token serves alone", type(exc).__name__)
        return Session(token, user, printer, created, offline)

    def get(self, token: str) -> Session:
        """The live session for `token`, its inactivity timer restarted; 401 when it ended."""
        body, _, signature = (token or "").partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise Unauthorized(*ENDED)
        try:
            record = json.loads(_unb64(body))
        except ValueError:
            raise Unauthorized(*ENDED) from None
        session = Session(token, record["u"], record["p"], float(record["t"]), bool(record.get("o")))
        try:
            alive = self.redis.expire(keys.session(token_digest(token)), self.idle_seconds)
        except Exception:  # noqa: BLE001 - Redis away: trust the signature, within a hard limit
            alive = time.time() - session.created_at < self.offline_max_seconds
        if not alive:
            raise Unauthorized(*ENDED)
        return session

    def delete(self, token: str) -> bool:
        try:
            return bool(self.redis.delete(keys.session(token_digest(token or ""))))
        except Exception:  # noqa: BLE001
            return False


class LoginGuard:
    """Counts failed logins per subject (a terminal, a user name) and locks the subject out past a threshold."""

    def __init__(self, redis: Any, threshold: int, lockout_seconds: int) -> None:
        self.redis = redis
        self.threshold = threshold
        self.lockout_seconds = lockout_seconds

    def check(self, *subjects: str) -> None:
        for subject in subjects:
            key = keys.login_failures(subject)
            try:
                failures = self.redis.get(key)
                locked = failures is not None and int(failures) >= self.threshold
                retry_after = max(1, int(self.redis.ttl(key))) if locked else 0
            except Exception:  # noqa: BLE001 - counting pauses while Redis is away; the analyst still limits PINs
                return
            if locked:
                raise Locked("locked", "too many failed attempts; try again later", retry_after=retry_after)

    def failed(self, *subjects: str) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for subject in subjects:
                key = keys.login_failures(subject)
                pipe.incr(key)
                pipe.expire(key, self.lockout_seconds)
            pipe.execute()
        except Exception:  # noqa: BLE001
            log.warning("failed login not counted: redis is unreachable")

    def succeeded(self, *subjects: str) -> None:
        try:
            self.redis.delete(*(keys.login_failures(s) for s in subjects))
        except Exception:  # noqa: BLE001
            pass
