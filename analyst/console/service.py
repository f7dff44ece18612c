"""What the console shows, gathered in one read transaction, and the check of its password."""

from __future__ import annotations

import hashlib
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
CSRF_MAX_AGE = 12 * 3600  # a console page left open for a working day still submits


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


# --- CSRF: the browser resends Basic credentials with any request, a forged cross-site one too ----------

def _csrf_key(password_hash: str) -> bytes:
    # Derived from the stored hash (a secret file): a new password makes every older token void.
    return hashlib.sha256(b"pullprint console csrf v1\0" + password_hash.encode()).digest()


def csrf_token(password_hash: str, now: float) -> str:
    """A synchronizer token for the console's forms: when it was issued, and a MAC over that.

    Stateless, so that any analyst process (every gunicorn worker, every analyst host) accepts it."""
    issued = str(int(now))
    mac = hmac.new(_csrf_key(password_hash), issued.encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac}"


def csrf_valid(password_hash: str, token: str, now: float) -> bool:
    issued, _, mac = (token or "").partition(".")
    if not issued.isdigit() or not 0 <= now - int(issued) <= CSRF_MAX_AGE:
        return False
    expected = hmac.new(_csrf_key(password_hash), issued.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, expected)


def same_origin(headers: Any, host_url: str) -> bool:
    """False for a request a browser says comes from another site (Sec-Fetch-Site, Origin)."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("Origin")
    return origin is None or origin == host_url.rstrip("/")
