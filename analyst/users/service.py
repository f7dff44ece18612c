"""User logic: upsert with hashed badge and PIN, removal, the sync list, and authentication with lockout."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analyst.events.service import record_event
from analyst.users.models import LoginFailure, User
from pullprint.credentials import badge_hash, pin_hash, verify_pin
from pullprint.errors import BadRequest, Conflict, NotFound, PullprintError

# Marks "leave this field as it is" in an upsert (None means "remove it").
KEEP: Any = object()
MIN_PIN, MAX_PIN = 4, 64
MAX_BADGE = 128


def _pepper(pepper: bytes) -> bytes:
    if not pepper:
        raise PullprintError("bad-config", "analyst.badge_pepper is not set (PULLPRINT_ANALYST_BADGE_PEPPER_FILE)",
                             status=500)
    return pepper


def _check_badge(badge: str) -> str:
    badge = badge.strip()
    if not badge or len(badge) > MAX_BADGE:
        raise BadRequest("bad-field", f"badge must be 1-{MAX_BADGE} characters", field="badge")
    return badge


def _check_pin(pin: str) -> str:
    if not MIN_PIN <= len(pin) <= MAX_PIN:
        raise BadRequest("bad-field", f"pin must be {MIN_PIN}-{MAX_PIN} characters", field="pin")
    return pin


def user_to_dict(user: User) -> dict[str, Any]:
    return {"name": user.name, "has_badge": user.badge_hash is not None, "has_pin": user.pin_hash is not None,
            "email": user.email}


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def upsert_user(session: Session, name: str, *, pepper: bytes, now: datetime, badge: str | None = KEEP,
                pin: str | None = KEEP, email: str | None = KEEP) -> tuple[User, bool]:
    """Create or update a user; returns (user, created). A badge or PIN of None (or "") removes it."""
    new_badge_hash: str | None = KEEP
    if badge is not KEEP:
        new_badge_hash = badge_hash(_pepper(pepper), _check_badge(badge)) if badge else None
    new_pin_hash: str | None = KEEP
    if pin is not KEEP:
        new_pin_hash = pin_hash(_check_pin(pin)) if pin else None
    user = find_user(session, name)
    created = user is None
    if user is None:
        user = User(name=name, badge_hash=None, pin_hash=None, email="", created_at=now, updated_at=now)
        session.add(user)
    if new_badge_hash is not KEEP:
        if new_badge_hash is not None:
            holder = session.scalars(select(User.name).where(User.badge_hash == new_badge_hash)).first()
            if holder is not None and holder != name:
                raise Conflict("badge-taken", "this badge belongs to another user")
        user.badge_hash = new_badge_hash
    if new_pin_hash is not KEEP:
        user.pin_hash = new_pin_hash
    if email is not KEEP:
        user.email = email or ""
    user.updated_at = now
    session.flush()
    return user, created


def remove_user(session: Session, name: str) -> None:
    user = find_user(session, name)
    if user is None:
        raise NotFound("not-found", f"no user {name}")
    session.delete(user)
    session.execute(delete(LoginFailure).where(LoginFailure.user_name == name))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def sync_users(session: Session) -> list[dict[str, Any]]:
    """Users with their hashes, for the collectors' degraded-mode cache (hashes only, never secrets)."""
    return [{"name": u.name, "badge_hash": u.badge_hash, "pin_hash": u.pin_hash} for u in list_users(session)]


@dataclass(frozen=True)
class AuthResult:
    """The outcome of one login attempt: a user name, or a lockout (`retry_after` seconds), or neither."""

    user: str | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class Lockout:
    failures: int = 5
    window: timedelta = timedelta(minutes=5)


def _locked_for(session: Session, name: str, lockout: Lockout, now: datetime) -> int | None:
    recent = list(session.scalars(
        select(LoginFailure.at)
        .where(LoginFailure.user_name == name, LoginFailure.at > now - lockout.window)
        .order_by(LoginFailure.at.desc())
        .limit(lockout.failures)))
    if len(recent) < lockout.failures:
        return None
    # Locked until the oldest of the last N failures leaves the window.
    return max(1, math.ceil((recent[-1] + lockout.window - now).total_seconds()))


def authenticate(session: Session, *, pepper: bytes, now: datetime, lockout: Lockout,
                 badge: str | None = None, user: str | None = None, pin: str | None = None,
                 printer: str | None = None, collector: str | None = None) -> AuthResult:
    """Check a badge, or a user name and PIN; logs `login` / `login-failed` (never the badge or PIN).

    Unknown badges, unknown users and wrong PINs give the same result and (through `verify_pin`)
    cost the same time. Failed PINs are counted per name typed, known or not, so that lockout
    does not reveal which names exist either.
    """
    where: dict[str, Any] = {"printer": printer, "collector": collector}
    if badge is not None:
        digest = badge_hash(_pepper(pepper), badge)
        found = session.scalars(select(User.name).where(User.badge_hash == digest)).first()
        if found is None:
            record_event(session, "login-failed", now=now, **where, detail={"method": "badge"})
            return AuthResult()
        record_event(session, "login", now=now, user=found, **where, detail={"method": "badge"})
        return AuthResult(user=found)
    if user is None or pin is None:
        raise BadRequest("missing-field", "send a badge, or a user and a PIN")
    retry_after = _locked_for(session, user, lockout, now)
    if retry_after is not None:
        record_event(session, "login-failed", now=now, user=user, **where,
                     detail={"method": "pin", "reason": "locked"})
        return AuthResult(retry_after=retry_after)
    account = find_user(session, user)
    if verify_pin(pin, account.pin_hash if account is not None else None):
        assert account is not None
        session.execute(delete(LoginFailure).where(LoginFailure.user_name == user))
        record_event(session, "login", now=now, user=user, **where, detail={"method": "pin"})
        return AuthResult(user=user)
    session.add(LoginFailure(user_name=user, at=now))
    # Old failures no longer count for anybody; dropping them keeps guessing from growing the table.
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - lockout.window))
    record_event(session, "login-failed", now=now, user=user, **where, detail={"method": "pin"})
    return AuthResult()
