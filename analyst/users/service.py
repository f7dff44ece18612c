"""User logic: upsert with hashed badge and PIN (and the PIN policy), removal, the sync list, and throttled
authentication."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analyst.db import Database
from analyst.events.service import record_event
from analyst.jobs.models import Job
from analyst.terminals.service import is_active
from analyst.users.models import LoginFailure, User
from pullprint.credentials import badge_hash, pin_hash, release_code_hash, verify_pin
from pullprint.errors import BadRequest, Conflict, Forbidden, Locked, NotFound, PullprintError, TooManyRequests
from pullprint.states import RELEASABLE
from pullprint.throttle import LoginLimits, LoginThrottle

# Marks "leave this field as it is" in an upsert (None means "remove it").
KEEP: Any = object()
# PIN policy (docs/security.md has the arithmetic): six characters or more, and none of the PINs
# people pick first. Online, the throttles allow a name about one guess a minute; offline, a stolen
# directory cache costs an attacker one scrypt (N=2^14, r=8) per guess per user.
MIN_PIN, MAX_PIN = 6, 64
MAX_BADGE = 128
COMMON_PINS = frozenset({
    "123456", "654321", "123123", "121212", "112233", "123321", "696969", "159753", "147258", "258369",
    "369258", "741852", "852963", "963852", "789456", "456789", "456123", "321654", "123654", "147852",
    "159357", "357159", "753951", "951753", "102030", "112211", "131313", "101010", "202020", "124578",
    "142536", "147369", "987456", "520520", "123789", "1234567", "12345678", "87654321", "11223344",
    "password", "passwort", "qwerty", "azerty", "abc123", "letmein",
})


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


def pin_problem(pin: str, user: str | None = None) -> str | None:
    """Why `pin` is not acceptable as a new PIN (for `user`), or None."""
    if not MIN_PIN <= len(pin) <= MAX_PIN:
        return f"pin must be {MIN_PIN}-{MAX_PIN} characters"
    if len(set(pin)) < 3:
        return "pin must use at least 3 different characters (not 000000, 121212, …)"
    if pin.isdigit() and len({(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}) == 1:
        return "pin must not be a run of evenly spaced digits (123456, 654321, 135791, …)"
    for size in range(3, len(pin) // 2 + 1):
        if len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size):
            return "pin must not repeat a shorter pattern (123123, …)"
    if pin.lower() in COMMON_PINS:
        return "pin must not be one of the PINs people pick first (147258, 112233, …)"
    if user and len(user) >= 3 and user.lower() in pin.lower():
        return "pin must not contain the user name"
    return None


def _check_pin(pin: str, user: str | None = None) -> str:
    problem = pin_problem(pin, user)
    if problem is not None:
        raise BadRequest("weak-pin", f"{problem}; choose another", field="pin", min_length=MIN_PIN)
    return pin


def user_to_dict(user: User) -> dict[str, Any]:
    return {"name": user.name, "has_badge": user.badge_hash is not None, "has_pin": user.pin_hash is not None,
            "email": user.email, "allowed": user.allowed}


# -- users by email (mail and uploads) ------------------------------------------------------------------
MAX_EMAIL = 254
_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)$")
_NAME_CHARS = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class EmailPolicy:
    """Which addresses are served: those of the serviced domains (none listed: any), known users only
    unless `auto_provision` makes a user of a new address on first use."""

    serviced_domains: tuple[str, ...] = ()
    auto_provision: bool = False
    guest_printing: bool = False  # outside the serviced domains: a guest, each job with its release code

    def serves(self, domain: str) -> bool:
        return not self.serviced_domains or domain in self.serviced_domains


@dataclass(frozen=True)
class Sender:
    """Whose a sender's address is: a user (`provisioned` on this call), or a guest (no account)."""

    user: str
    email: str
    provisioned: bool = False
    guest: bool = False


def guest_name(address: str) -> str:
    """The owner a guest's jobs are held under: stable per address (accounting), not the address itself."""
    return "guest-" + hashlib.sha256(address.encode()).hexdigest()[:16]


def check_email(email: str, field: str = "email") -> tuple[str, str]:
    """`email` normalised (trimmed, lower case) and its domain; 400 unless it is a plain address."""
    normal = email.strip().lower()
    match = _EMAIL.match(normal) if len(normal) <= MAX_EMAIL else None
    if match is None or ".." in normal or normal.startswith("."):
        raise BadRequest("bad-field", f"{field} must be a plain email address (user@example.org)", field=field)
    return normal, match.group(1)


def _free_name(session: Session, email: str) -> str:
    """A user name for a new address: its local part in user-name characters, made unique."""
    base = _NAME_CHARS.sub("-", email.split("@", 1)[0]).strip("-.")[:56] or "user"
    name, n = base, 1
    while find_user(session, name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def resolve_email(session: Session, email: str, *, policy: EmailPolicy, now: datetime) -> Sender:
    """Whose `email` is under `policy`; 403 with the reason when it is not served."""
    address, domain = check_email(email)
    if not policy.serves(domain):
        if policy.guest_printing:
            return Sender(guest_name(address), address, guest=True)
        raise Forbidden("not-serviced", f"mail from {domain} is not served here", domain=domain)
    user = session.scalars(select(User).where(User.email == address)).first()
    provisioned = False
    if user is None:
        if not policy.auto_provision:
            raise Forbidden("unknown-user", f"{address} is not a user here; ask IT to add you")
        user = User(name=_free_name(session, address), badge_hash=None, pin_hash=None, email=address,
                    allowed=True, created_at=now, updated_at=now)
        session.add(user)
        session.flush()
        provisioned = True
        record_event(session, "user-provisioned", now=now, user=user.name, detail={"source": "email"})
    if not user.allowed:
        raise Forbidden("user-denied", f"{user.name} may not print; ask IT", user=user.name)
    return Sender(user.name, user.email, provisioned)


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def upsert_user(session: Session, name: str, *, pepper: bytes, now: datetime, badge: str | None = KEEP,
                pin: str | None = KEEP, email: str | None = KEEP, allowed: bool | None = KEEP,
                policy: EmailPolicy | None = None) -> tuple[User, bool]:
    """Create or update a user; returns (user, created). A badge, PIN or email of None (or "") removes it.
    An email must be unique and, with a `policy` of serviced domains, in one of them."""
    if email is not KEEP and email:
        email, domain = check_email(email)
        if policy is not None and not policy.serves(domain):
            served = ", ".join(policy.serviced_domains)
            raise BadRequest("not-serviced", f"{domain} is not a serviced domain ({served})", field="email")
        holder = session.scalars(select(User.name).where(User.email == email)).first()
        if holder is not None and holder != name:
            raise Conflict("email-taken", "this email address belongs to another user")
    new_badge_hash: str | None = KEEP
    if badge is not KEEP:
        new_badge_hash = badge_hash(_pepper(pepper), _check_badge(badge)) if badge else None
    new_pin_hash: str | None = KEEP
    if pin is not KEEP:
        new_pin_hash = pin_hash(_check_pin(pin, name)) if pin else None
    user = find_user(session, name)
    created = user is None
    if user is None:
        user = User(name=name, badge_hash=None, pin_hash=None, email="", allowed=True, created_at=now,
                    updated_at=now)
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
    if allowed is not KEEP and allowed is not None:
        user.allowed = allowed
    user.updated_at = now
    session.flush()
    return user, created


def remove_user(session: Session, name: str) -> None:
    user = find_user(session, name)
    if user is None:
        raise NotFound("not-found", f"no user {name}")
    session.delete(user)
    session.execute(delete(LoginFailure).where(LoginFailure.user_name == SqlFailures.column_key(f"u:{name}")))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def sync_users(session: Session) -> list[dict[str, Any]]:
    """Users with their hashes, for the collectors' degraded-mode cache (hashes only, never secrets)."""
    return [{"name": u.name, "badge_hash": u.badge_hash, "pin_hash": u.pin_hash, "allowed": u.allowed}
            for u in list_users(session)]


class SqlFailures:
    """Login failures as rows of login_failures, whose user_name column holds the subject's key
    ("u:alice", "t:t-4f1c…", "n:10.0.3.7", "a:10.0.3.7"; hashed when longer than the column's 64 characters).

    `rows` maps each attempt's entry to the row it reserved, shared by the transactions of one login.
    """

    def __init__(self, session: Session, rows: dict[str, int]) -> None:
        self.session = session
        self.rows = rows

    @staticmethod
    def column_key(key: str) -> str:
        return key if len(key) <= 64 else "h:" + hashlib.sha256(key.encode()).hexdigest()[:62]

    @staticmethod
    def _at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    def recent(self, key: str, now: float, window: float) -> tuple[int, float]:
        times = list(self.session.scalars(select(LoginFailure.at).where(
            LoginFailure.user_name == self.column_key(key), LoginFailure.at > self._at(now - window))))
        return len(times), max((t.timestamp() for t in times), default=0.0)

    def add(self, key: str, entry: str, now: float, window: float) -> tuple[int, float]:
        before = self.recent(key, now, window)
        row = LoginFailure(user_name=self.column_key(key), at=self._at(now))
        self.session.add(row)
        self.session.flush()
        self.rows[f"{key}|{entry}"] = row.id
        return before

    def discard(self, key: str, entry: str) -> None:
        row = self.rows.pop(f"{key}|{entry}", None)
        if row is not None:
            self.session.execute(delete(LoginFailure).where(LoginFailure.id == row))

    def clear(self, key: str) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.user_name == self.column_key(key)))


@dataclass(frozen=True)
class AuthResult:
    """The outcome of one login attempt: a user name, or a refusal (throttled: `retry_after` seconds,
    `locked` for a 423; a revoked terminal: `refused`), or neither (wrong credentials)."""

    user: str | None = None
    retry_after: int | None = None
    locked: bool = False
    refused: bool = False
    denied: bool = False  # the right credentials of a user who is denied (User.allowed false)
    job: str | None = None  # a release code's login: the one job it releases


def authenticate(db: Database, *, pepper: bytes, clock: Callable[[], datetime], limits: LoginLimits,
                 badge: str | None = None, user: str | None = None, pin: str | None = None,
                 code: str | None = None, printer: str | None = None, collector: str | None = None,
                 terminal: str | None = None, source: str | None = None) -> AuthResult:
    """Check a badge, or a user name and PIN; logs `login` / `login-failed` (never the badge or PIN).

    Throttled (pullprint/throttle.py) per terminal and source address as the collector reports them,
    and per user name typed, known or not (so no answer tells which names exist). Unknown badges,
    unknown users and wrong PINs give the same result, and within a method the same work: a badge is
    one HMAC and one lookup; a PIN one lookup and one scrypt (`verify_pin` has a dummy hash for
    names without one). The scrypt runs outside any transaction: its ~50 ms holding SQLite's write
    lock would make PIN guesses under invented names queue every registration and claim.
    """
    if badge is None and code is None and (user is None or pin is None):
        raise BadRequest("missing-field", "send a badge, a release code, or a user and a PIN")
    method = "badge" if badge is not None else "code" if code is not None else "pin"
    where: dict[str, Any] = {"printer": printer, "collector": collector}
    detail: dict[str, Any] = {"method": method, **({"terminal": terminal} if terminal else {})}
    subjects = limits.subjects(terminal=terminal or None, address=source or None,
                               user=user if method == "pin" else None)
    rows: dict[str, int] = {}

    def throttle(session: Session) -> LoginThrottle:
        return LoginThrottle(SqlFailures(session, rows), clock=lambda: clock().timestamp())

    digest = badge_hash(_pepper(pepper), badge) if badge is not None else None
    code_digest = release_code_hash(_pepper(pepper), code) if code is not None else None
    oldest = timedelta(seconds=max(limits.terminal.window, limits.address.window, limits.user.window))
    with db.session(write=True) as session:
        now = clock()
        # Old failures no longer count for anybody; dropping them keeps guessing from growing the table.
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - oldest))
        if terminal and not is_active(session, terminal):
            record_event(session, "login-failed", now=now, user=user, **where,
                         detail={**detail, "reason": "terminal-revoked"})
            return AuthResult(refused=True)
        try:
            attempt = throttle(session).admit(subjects)
        except (TooManyRequests, Locked) as exc:
            record_event(session, "login-failed", now=now, user=user, **where, detail={**detail, "reason": "throttled"})
            retry_after = exc.details["retry_after"]
            assert isinstance(retry_after, int)
            return AuthResult(retry_after=retry_after, locked=isinstance(exc, Locked))
        if code_digest is not None:
            # A guest's job code: one lookup, like a badge; it releases that job only, while it is open.
            job = session.scalars(select(Job).where(Job.release_code_hash == code_digest,
                                                    Job.state.in_([s.value for s in RELEASABLE]))).first()
            if job is None:
                throttle(session).failed(attempt)
                record_event(session, "login-failed", now=now, **where, detail=detail)
                return AuthResult()
            throttle(session).succeeded(attempt)
            record_event(session, "login", now=now, user=job.owner, job=job.id, **where, detail=detail)
            return AuthResult(user=job.owner, job=job.id)
        if digest is not None:
            holder = session.scalars(select(User).where(User.badge_hash == digest)).first()
            if holder is None:
                throttle(session).failed(attempt)
                record_event(session, "login-failed", now=now, **where, detail=detail)
                return AuthResult()
            throttle(session).succeeded(attempt)
            if not holder.allowed:
                record_event(session, "login-failed", now=now, user=holder.name, **where,
                             detail={**detail, "reason": "user-denied"})
                return AuthResult(user=holder.name, denied=True)
            record_event(session, "login", now=now, user=holder.name, **where, detail=detail)
            return AuthResult(user=holder.name)
        account = find_user(session, user or "")
        stored = account.pin_hash if account is not None else None
        allowed = account.allowed if account is not None else True
    assert pin is not None and user is not None
    matched = verify_pin(pin, stored)  # no transaction open: no lock held while scrypt runs
    with db.session(write=True) as session:
        now = clock()
        if matched:
            throttle(session).succeeded(attempt)
            if not allowed:
                record_event(session, "login-failed", now=now, user=user, **where,
                             detail={**detail, "reason": "user-denied"})
                return AuthResult(user=user, denied=True)
            record_event(session, "login", now=now, user=user, **where, detail=detail)
        else:
            throttle(session).failed(attempt)
            record_event(session, "login-failed", now=now, user=user, **where, detail=detail)
    return AuthResult(user=user if matched else None)
