"""Terminal sessions: any collector serves any request of a session, and only from the terminal that opened it.

A session token is signed (HMAC under a key derived from `collector.session_key`, a secret of its
own that only the site's collectors hold), so every collector can check it on its own. The signed
record names the user, the printer and what the session is bound to: the enrolled terminal's id
("t:ID"), or for an unenrolled client its address ("a:IP"); a token presented by anyone else is
refused (collector/terminal.py). Redis adds what a signature cannot: the inactivity timeout and
logout. When Redis is away, a validly signed token is accepted up to `offline_max_seconds` after it
was issued, so terminals keep working; one its login could not record in Redis (slow or away then)
is recorded at its next use. (Login throttling: collector/throttle.py.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from collector.redis_client import optional
from pullprint import keys
from pullprint.credentials import token_digest
from pullprint.errors import Unauthorized

ENDED = ("session-ended", "the session has ended; please log in again")
LIVE, ENDED_MARK = "1", "0"  # a session's record in Redis: in use, or logged out


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    printer: str
    created_at: float
    offline: bool = False
    bound_to: str = ""  # "t:<terminal id>" or "a:<address>" (collector/terminal.py Caller.binding)
    only: str = ""  # a guest's release-code session: the one job it may see and release

    @property
    def terminal(self) -> str:
        """The enrolled terminal that opened the session ("" for an unenrolled client)."""
        return self.bound_to[2:] if self.bound_to.startswith("t:") else ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionStore:
    def __init__(self, redis: Any, idle_seconds: int, signing_secret: str, offline_max_seconds: int = 600) -> None:
        self.redis = redis
        self.idle_seconds = idle_seconds
        self.offline_max_seconds = offline_max_seconds
        self._key = hmac.new(signing_secret.encode(), b"pullprint session v2", hashlib.sha256).digest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def create(self, user: str, printer: str, *, bound_to: str, offline: bool = False, only: str = "") -> Session:
        created = time.time()
        record = {"u": user, "p": printer, "t": created, "o": offline, "b": bound_to, "n": secrets.token_hex(8)}
        if only:
            record["j"] = only
        body = _b64(json.dumps(record, separators=(",", ":")).encode())
        token = f"{body}.{self._sign(body)}"
        # Redis slow or away: the signed token serves alone, and its first use records it (`get`).
        optional("session record", lambda: self.redis.set(keys.session(token_digest(token)), LIVE,
                                                          ex=self.idle_seconds))
        return Session(token, user, printer, created, offline, bound_to, only)

    def get(self, token: str) -> Session:
        """The live session for `token`, its inactivity timer restarted; 401 when it ended."""
        body, _, signature = (token or "").partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise Unauthorized(*ENDED)
        try:
            record = json.loads(_unb64(body))
            session = Session(token, str(record["u"]), str(record["p"]), float(record["t"]), bool(record.get("o")),
                              str(record.get("b", "")), str(record.get("j", "")))
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            # Only a holder of the key can sign a record; one of another shape (another version, a bug,
            # a 400-digit time, [[[[…) is still just not a session.
            raise Unauthorized(*ENDED) from None
        name = keys.session(token_digest(token))
        try:
            state = self.redis.getex(name, ex=self.idle_seconds)
            if state is None and time.time() - session.created_at < self.idle_seconds:
                # Younger than the inactivity timeout, so it cannot have timed out: its login could not
                # record it (Redis slow or away then, or restarted empty since). It is recorded now.
                self.redis.set(name, LIVE, ex=self.idle_seconds, nx=True)
                state = LIVE
            alive = state == LIVE
        except Exception:  # noqa: BLE001 - Redis away: trust the signature, within a hard limit
            alive = time.time() - session.created_at < self.offline_max_seconds
        if not alive:
            raise Unauthorized(*ENDED)
        return session

    def delete(self, token: str) -> bool:
        """Log out: the session's record says it ended (kept as long as the session could still be young,
        so `get` never takes it for one its login could not record)."""
        try:
            return self.redis.set(keys.session(token_digest(token or "")), ENDED_MARK, ex=self.idle_seconds,
                                  get=True) == LIVE
        except Exception:  # noqa: BLE001
            return False
