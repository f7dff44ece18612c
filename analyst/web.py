"""What the analyst's views read from Flask: the app's Analyst state, a request's transaction, body and query."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app, request
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.config import AnalystConfig
from analyst.db import Database
from analyst.events.service import Replay
from analyst.users.service import EmailPolicy
from pullprint.errors import BadRequest
from pullprint.throttle import LoginLimits, login_limits

EXTENSION = "pullprint.analyst"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Analyst:
    """Per-app state, kept in ``app.extensions``; `clock` is replaceable so tests can move time."""

    config: AnalystConfig
    db: Database
    clock: Callable[[], datetime] = utc_now

    @property
    def pepper(self) -> bytes:
        return self.config.badge_pepper.encode()

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.config.job_lifetime_hours)

    @property
    def email_policy(self) -> EmailPolicy:
        return EmailPolicy(tuple(self.config.serviced_domains), self.config.auto_provision, self.config.guest_printing)

    @property
    def login_limits(self) -> LoginLimits:
        cfg = self.config
        return login_limits(terminal_failures=cfg.login_failures_per_terminal,
                            address_failures=cfg.login_failures_per_address, user_failures=cfg.lockout_failures,
                            window=cfg.lockout_window_seconds, lockout=cfg.login_lockout_seconds,
                            user_max_delay=cfg.login_user_max_delay_seconds)


def analyst() -> Analyst:
    return current_app.extensions[EXTENSION]


def now() -> datetime:
    return analyst().clock()


@contextmanager
def transaction() -> Iterator[Session]:
    """The request's unit of work; GETs read, everything else takes the write lock on SQLite."""
    with analyst().db.session(write=request.method != "GET") as session:
        yield session


def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; malformed JSON or a non-object is a 400."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("malformed-json", "the request needs a JSON object body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[… nested past the stack
        raise BadRequest("malformed-json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("malformed-json", "the request body must be a JSON object")
    return body


def query_int(name: str, default: int, *, minimum: int = 0, maximum: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("bad-field", f"{name} must be a whole number", field=name) from None
    if not minimum <= value <= maximum:
        raise BadRequest("bad-field", f"{name} must be between {minimum} and {maximum}", field=name)
    return value


def query_bool(name: str) -> bool | None:
    """A true/false query parameter; absent or empty is None."""
    raw = (request.args.get(name) or "").lower()
    if not raw:
        return None
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise BadRequest("bad-field", f"{name} must be true or false", field=name)


def read_replay(body: dict[str, Any]) -> Replay | None:
    """`"offline": true` and `"at"` of a call a collector replays after the analyst was unreachable.

    `at` (default: now) is when the collector acted; a time ahead of the analyst's clock is taken as now,
    since a collector's clock running fast must not put events in the future.
    """
    if not v.boolean(body, "offline", default=False):
        v.timestamp(body, "at")  # still checked, so a malformed body is a 400 either way
        return None
    current = now()
    at = v.timestamp(body, "at") or current
    return Replay(at=min(at, current), replayed_at=current)
