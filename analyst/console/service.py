"""The console's logic: administrator accounts and their sessions, form tokens, and what the pages show.

An account is a row of console_accounts (`pullprint console-user add`), or the built-in ``admin`` of
``analyst.console_password_hash`` (a full account, as long as no row of that name exists). A session
is a random token in a signed cookie; the analyst stores only its digest, so a logout, a new password
or a removed account ends it on every analyst process at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from analyst.collectors.service import collector_to_dict, list_collectors
from analyst.console.models import FULL, READ_ONLY, ROLES, ConsoleAccount, ConsoleSession
from analyst.events.service import event_to_dict, latest_events
from analyst.jobs.service import count_by_state
from analyst.printers.service import list_printers, printer_to_dict
from analyst.validate import ID_PATTERN
from pullprint.credentials import pin_hash, token_digest, verify_pin
from pullprint.errors import BadRequest, NotFound

BUILTIN_ACCOUNT = "admin"
EVENTS_SHOWN = 100
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def looks_like_hash(stored_hash: str) -> bool:
    """The ``scrypt$salt$digest`` form pullprint.credentials.pin_hash writes."""
    parts = stored_hash.split("$")
    return len(parts) == 3 and parts[0] == "scrypt" and all(parts[1:])


# --- accounts ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Operator:
    """Who is signed in, and what they may do."""

    name: str
    role: str
    credential: str  # fingerprint of the password hash: a new password ends older sessions

    @property
    def may_act(self) -> bool:
        return self.role == FULL


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(b"pullprint console credential\0" + password_hash.encode()).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not ID_PATTERN.match(name) or len(name) > 64:
        raise BadRequest("bad-field", "an account name is 1-64 letters, digits, '.', '_' or '-'", field="name")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest("bad-field", f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest("bad-field", f"a console password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                         field="password")
    return password


def upsert_account(session: Session, name: str, *, role: str | None, password: str | None,
                   now: datetime) -> tuple[ConsoleAccount, bool]:
    """Add the account `name`, or change its role and/or password; (account, created)."""
    check_name(name)
    if role is not None:
        check_role(role)
    if password is not None:
        check_password(password)
    account = session.get(ConsoleAccount, name)
    if account is None:
        if password is None:
            raise BadRequest("bad-field", "a new account needs a password", field="password")
        account = ConsoleAccount(name=name, role=role or READ_ONLY, password_hash=pin_hash(password),
                                 created_at=now, updated_at=now)
        session.add(account)
        return account, True
    if role is not None:
        account.role = role
    if password is not None:
        account.password_hash = pin_hash(password)
        session.execute(delete(ConsoleSession).where(ConsoleSession.account == name))
    account.updated_at = now
    return account, False


def remove_account(session: Session, name: str) -> None:
    account = session.get(ConsoleAccount, check_name(name))
    if account is None:
        raise NotFound("no-such-account", f"no console account {name!r}")
    session.delete(account)
    session.execute(delete(ConsoleSession).where(ConsoleSession.account == name))


def list_accounts(session: Session) -> list[ConsoleAccount]:
    return list(session.scalars(select(ConsoleAccount).order_by(ConsoleAccount.name)))


def has_accounts(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ConsoleAccount)))


def _stored(session: Session, name: str, builtin_hash: str) -> tuple[str | None, str]:
    """(password hash, role) of `name`: its row, else the built-in admin's, else (None, "")."""
    account = session.get(ConsoleAccount, name) if ID_PATTERN.match(name) and len(name) <= 64 else None
    if account is not None:
        return account.password_hash, account.role
    if name == BUILTIN_ACCOUNT and builtin_hash:
        return builtin_hash, FULL
    return None, ""


def lookup_credentials(session: Session, name: str, builtin_hash: str) -> tuple[str | None, str]:
    """What a login checks its password against (read in a transaction; the scrypt runs outside it)."""
    return _stored(session, name, builtin_hash)


def verify(password: str, stored: str | None) -> bool:
    """One scrypt whether or not the account exists."""
    return verify_pin(password[:MAX_PASSWORD], stored)


# --- sessions ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionPolicy:
    key: bytes          # signs the cookies and the forms' tokens
    idle: timedelta     # a session unused this long is over
    lifetime: timedelta  # and every session is over this long after its login


def session_key(pepper: bytes) -> bytes:
    """The console's signing key, derived from the analyst's secret (every analyst process has the same)."""
    return hmac.new(pepper, b"pullprint console session key v1", hashlib.sha256).digest()


def _sign(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def start_session(session: Session, name: str, password_hash: str, *, policy: SessionPolicy,
                  now: datetime) -> str:
    """A new session for `name`; the cookie's value (token and its signature)."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(digest=token_digest(token), account=name, credential=_fingerprint(password_hash),
                               created_at=now, last_seen=now))
    # Expired sessions of anyone are cleared at each login: the table stays as small as the signed-in set.
    session.execute(delete(ConsoleSession).where(
        (ConsoleSession.last_seen < now - policy.idle) | (ConsoleSession.created_at < now - policy.lifetime)))
    return f"{token}.{_sign(policy.key, token)}"


def _token(cookie: str, key: bytes) -> str | None:
    token, _, mac = (cookie or "").partition(".")
    if not token or len(cookie) > 200 or not hmac.compare_digest(mac.encode(), _sign(key, token).encode()):
        return None
    return token


def resume_session(session: Session, cookie: str, *, policy: SessionPolicy, builtin_hash: str,
                   now: datetime) -> tuple[Operator, str] | None:
    """(the operator, the session's digest) of a valid cookie, its idle clock restarted; None otherwise."""
    token = _token(cookie, policy.key)
    if token is None:
        return None
    row = session.get(ConsoleSession, token_digest(token))
    if row is None:
        return None
    stored, role = _stored(session, row.account, builtin_hash)
    if (stored is None or not hmac.compare_digest(row.credential, _fingerprint(stored))
            or now - row.last_seen > policy.idle or now - row.created_at > policy.lifetime):
        session.delete(row)
        return None
    row.last_seen = max(row.last_seen, now)
    return Operator(row.account, role, row.credential), row.digest


def end_session(session: Session, cookie: str, key: bytes) -> None:
    token = _token(cookie, key)
    if token is not None:
        session.execute(delete(ConsoleSession).where(ConsoleSession.digest == token_digest(token)))


# --- form tokens (CSRF) --------------------------------------------------------------------------------------

LOGIN_FORM_MAX_AGE = 3600


def form_token(key: bytes, binding: str, now: float) -> str:
    """A synchronizer token for a form: when it was issued and a MAC over that and `binding` (the
    session's digest, or "login" for the login form). Stateless, so any analyst process accepts it."""
    issued = str(int(now))
    return f"{issued}.{_sign(key, _form_binding(binding, issued))}"


def _form_binding(binding: str, issued: str) -> str:
    return "\0".join(("csrf", binding, issued))


def form_token_valid(key: bytes, binding: str, token: str, now: float, max_age: float) -> bool:
    issued, _, mac = (token or "").partition(".")
    if not issued.isdigit() or not 0 <= now - int(issued) <= max_age:
        return False
    return hmac.compare_digest(mac.encode(), _sign(key, _form_binding(binding, issued)).encode())


def same_origin(headers: Any, host_url: str) -> bool:
    """False for a request a browser says comes from another site (Sec-Fetch-Site, Origin)."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("Origin")
    return origin is None or origin == host_url.rstrip("/")


# --- what the pages show ----------------------------------------------------------------------------------------

def snapshot(session: Session, *, now: datetime, dead_after: float) -> dict[str, Any]:
    """Collectors, printers (no secrets), job counts by state and the newest events, newest first."""
    return {
        "now": now,
        "collectors": [collector_to_dict(c, now=now, dead_after=dead_after) for c in list_collectors(session)],
        "printers": [printer_to_dict(p) for p in list_printers(session)],
        "jobs": count_by_state(session),
        "events": [event_to_dict(e) for e in latest_events(session, limit=EVENTS_SHOWN)],
    }


def waiting_by_printer(session: Session) -> dict[str, int]:
    """Jobs being released at each printer now (claimed, printing or queued behind others there)."""
    from analyst.jobs.models import Job

    rows = session.execute(select(Job.claim_printer, func.count()).where(
        Job.state == "releasing", Job.claim_printer.is_not(None)).group_by(Job.claim_printer))
    return {str(printer): count for printer, count in rows}


# --- the load balancers ------------------------------------------------------------------------------------------

LB_ORDER = {"MAINT": 0, "DRAIN": 1, "DOWN": 2, "NOLB": 3, "NOCHECK": 4, "UP": 5}


def lb_states(sockets: list[str]) -> tuple[dict[str, str], str]:
    """({collector: its state in HAProxy}, a problem reaching one): with several load balancers, the state
    of the one that sends a collector least (a collector drained on one is shown drained)."""
    from lb import runtime
    from pullprint.errors import PullprintError

    states: dict[str, str] = {}
    problems = []
    for socket_path in sockets:
        try:
            found = runtime.server_states(socket_path)
        except PullprintError as exc:
            problems.append(exc.message)
            continue
        for server, state in found.items():
            if server not in states or LB_ORDER.get(state, 9) < LB_ORDER.get(states[server], 9):
                states[server] = state
    return states, "; ".join(problems)


def set_lb_state(sockets: list[str], collector: str, *, drain: bool) -> None:
    """Drain `collector` (no new requests; those in flight finish) or put it back, on every load balancer."""
    from lb import runtime
    from pullprint.errors import Unavailable

    if not sockets:
        raise Unavailable("no-load-balancer", "the analyst knows no load balancer (analyst.lb_sockets)")
    for socket_path in sockets:
        (runtime.drain if drain else runtime.ready)(socket_path, collector)
