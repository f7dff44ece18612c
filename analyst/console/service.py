"""What the console shows, gathered in one read transaction, and the check of its password."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from analyst.collectors.service import collector_to_dict, list_collectors
from analyst.events.service import event_to_dict, latest_events
from analyst.jobs.service import count_by_state
from analyst.printers.service import list_printers, printer_to_dict
from pullprint.credentials import verify_pin

CONSOLE_USER = "admin"
EVENTS_SHOWN = 100


def check_password(user: str, password: str, stored_hash: str) -> bool:
    """True for user ``admin`` with the password of `stored_hash`; costs one scrypt whatever the user name."""
    right_user = hmac.compare_digest(user.encode(), CONSOLE_USER.encode())
    right_password = verify_pin(password, stored_hash)
    return right_user and right_password


def looks_like_hash(stored_hash: str) -> bool:
    """The ``scrypt$salt$digest`` form pullprint.credentials.pin_hash writes."""
    parts = stored_hash.split("$")
    return len(parts) == 3 and parts[0] == "scrypt" and all(parts[1:])


def snapshot(session: Session, *, now: datetime, dead_after: float) -> dict[str, Any]:
    """Collectors, printers (no secrets), job counts by state and the newest events, newest first."""
    return {
        "now": now,
        "collectors": [collector_to_dict(c, now=now, dead_after=dead_after) for c in list_collectors(session)],
        "printers": [printer_to_dict(p) for p in list_printers(session)],
        "jobs": count_by_state(session),
        "events": [event_to_dict(e) for e in latest_events(session, limit=EVENTS_SHOWN)],
    }
