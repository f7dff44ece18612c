"""Terminal logic: enrol a terminal for a printer, one-time enrollment codes, revoke, and what collectors sync.

A terminal's credential is a bearer token the analyst shows once (when the terminal is added, or
when an enrollment code is redeemed) and keeps only as a SHA-256 digest; the same for the one-time
enrollment code, which is good for `ENROLLMENT_VALID` and for one redemption. Collectors learn the
digests of the active terminals from the directory sync (GET /api/v1/sync) and check a terminal's
`Authorization: Bearer` against them, offline too; a revoked terminal leaves the sync, so every
collector refuses it from its next sync on (and the analyst at once, at POST /auth).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.events.service import record_event
from analyst.printers.service import get_printer
from analyst.terminals.models import Terminal
from pullprint.credentials import new_secret, token_digest
from pullprint.errors import BadRequest, Conflict, Forbidden, NotFound

ENROLLMENT_VALID = timedelta(minutes=15)
MAX_ENROLLMENT_VALID = timedelta(hours=24)
MAX_DESCRIPTION = 255
# "t:" + id is a login-throttle subject, which the login_failures table holds in 64 characters.
TERMINAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,61}\Z")
# Enrollment codes: 16 characters from an alphabet without look-alikes (0/O, 1/I/L), 80 bits, typed
# in groups of four; case, spaces and dashes do not matter.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 16
REFUSED = ("enrollment-refused", "this enrollment code is unknown, already used or expired; "
           "ask an administrator for a new enrollment link")


def check_terminal_id(value: Any, name: str = "terminal") -> str:
    if not isinstance(value, str) or not TERMINAL_ID.match(value):
        raise BadRequest("bad-field", f"{name} must be 1-62 letters, digits or . _ -", field=name)
    return value


def new_enrollment_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, _CODE_LENGTH, 4))


def _code_digest(code: str) -> str:
    return token_digest(re.sub(r"[\s\-]", "", code).upper())


def terminal_to_dict(terminal: Terminal, *, now: datetime) -> dict[str, Any]:
    """A terminal as the API answers it: never a token, a code or their digests."""
    pending = (terminal.enrollment_code_hash is not None and terminal.enrollment_expires_at is not None
               and terminal.enrollment_expires_at > now)
    return {"id": terminal.id, "printer": terminal.printer_id, "description": terminal.description,
            "created_at": v.iso(terminal.created_at), "enrolled_at": v.iso(terminal.enrolled_at),
            "revoked_at": v.iso(terminal.revoked_at),
            "active": terminal.revoked_at is None and terminal.token_hash is not None,
            "enrollment_pending": pending,
            "enrollment_expires_at": v.iso(terminal.enrollment_expires_at) if pending else None}


def add_terminal(session: Session, printer_id: str, *, now: datetime, description: str = "",
                 terminal_id: str | None = None) -> tuple[Terminal, str]:
    """Enrol a new terminal for `printer_id`; returns it and its token (the only time it is shown)."""
    printer = get_printer(session, printer_id)  # 404 for a printer the analyst does not know
    terminal_id = check_terminal_id(terminal_id) if terminal_id else f"t-{secrets.token_hex(6)}"
    if session.get(Terminal, terminal_id) is not None:
        raise Conflict("terminal-exists", f"there is already a terminal {terminal_id}")
    token = new_secret(32)
    terminal = Terminal(id=terminal_id, printer_id=printer.id, description=description or "",
                        token_hash=token_digest(token), enrollment_code_hash=None, enrollment_expires_at=None,
                        created_at=now, enrolled_at=now, revoked_at=None)
    session.add(terminal)
    session.flush()
    record_event(session, "terminal-add", now=now, printer=printer.id,
                 detail={"terminal": terminal_id, "description": terminal.description})
    return terminal, token


def get_terminal(session: Session, terminal_id: str) -> Terminal:
    terminal = session.get(Terminal, check_terminal_id(terminal_id))
    if terminal is None:
        raise NotFound("not-found", f"no terminal {terminal_id}")
    return terminal


def list_terminals(session: Session) -> list[Terminal]:
    return list(session.scalars(select(Terminal).order_by(Terminal.printer_id, Terminal.id)))


def revoke_terminal(session: Session, terminal_id: str, *, now: datetime) -> Terminal:
    """Revoke a terminal: its token and any pending code stop working (collectors: from their next sync)."""
    terminal = get_terminal(session, terminal_id)
    if terminal.revoked_at is None:
        terminal.revoked_at = now
        record_event(session, "terminal-revoke", now=now, printer=terminal.printer_id,
                     detail={"terminal": terminal.id})
    terminal.token_hash = terminal.enrollment_code_hash = terminal.enrollment_expires_at = None
    session.flush()
    return terminal


def new_enrollment(session: Session, terminal_id: str, *, now: datetime,
                   valid: timedelta = ENROLLMENT_VALID) -> tuple[Terminal, str]:
    """A one-time enrollment code for the terminal (replacing any pending one); returns it and the code.

    Redeeming it gives the station a fresh token and ends the old one: the way to enrol a kiosk
    page, or to enrol one again that lost its credential.
    """
    if not timedelta(seconds=60) <= valid <= MAX_ENROLLMENT_VALID:
        raise BadRequest("bad-field", "an enrollment link is valid between 1 minute and 24 hours",
                         field="valid_minutes")
    terminal = get_terminal(session, terminal_id)
    if terminal.revoked_at is not None:
        raise Conflict("terminal-revoked", f"terminal {terminal.id} is revoked; add a new one")
    code = new_enrollment_code()
    terminal.enrollment_code_hash = _code_digest(code)
    terminal.enrollment_expires_at = now + valid
    session.flush()
    record_event(session, "terminal-enrollment-link", now=now, printer=terminal.printer_id,
                 detail={"terminal": terminal.id, "expires_at": v.iso(terminal.enrollment_expires_at)})
    return terminal, code


def redeem_enrollment(session: Session, code: str, *, now: datetime) -> tuple[Terminal, str]:
    """Trade a pending enrollment code for a fresh token: once (a compare-and-set on the code's digest)."""
    digest = _code_digest(code)
    terminal = session.scalars(select(Terminal).where(Terminal.enrollment_code_hash == digest)).first()
    if (terminal is None or terminal.revoked_at is not None or terminal.enrollment_expires_at is None
            or terminal.enrollment_expires_at <= now):
        raise Forbidden(*REFUSED)
    token = new_secret(32)
    taken = session.execute(
        update(Terminal).where(Terminal.id == terminal.id, Terminal.enrollment_code_hash == digest)
        .values(enrollment_code_hash=None, enrollment_expires_at=None, token_hash=token_digest(token),
                enrolled_at=now).execution_options(synchronize_session=False))
    if cast(CursorResult[Any], taken).rowcount != 1:  # redeemed a moment ago through another analyst or thread
        raise Forbidden(*REFUSED)
    session.refresh(terminal)
    record_event(session, "terminal-enrolled", now=now, printer=terminal.printer_id, detail={"terminal": terminal.id})
    return terminal, token


def is_active(session: Session, terminal_id: str) -> bool:
    """Whether a terminal a collector names in a login may still log users in (not revoked)."""
    terminal = session.get(Terminal, terminal_id)
    return terminal is not None and terminal.revoked_at is None and terminal.token_hash is not None


def terminal_by_digest(session: Session, token_hash: str) -> Terminal | None:
    """The active terminal whose token has this digest, or None."""
    terminal = session.scalars(select(Terminal).where(Terminal.token_hash == token_hash)).first()
    return terminal if terminal is not None and terminal.revoked_at is None else None


def sync_terminals(session: Session) -> list[dict[str, str]]:
    """What collectors need to know a terminal by its bearer token: the active ones, their printers, digests."""
    rows = session.scalars(select(Terminal).where(Terminal.revoked_at.is_(None), Terminal.token_hash.is_not(None))
                           .order_by(Terminal.id))
    return [{"id": t.id, "printer": t.printer_id, "token_hash": t.token_hash or ""} for t in rows]
