"""Every Redis key name pullprint uses, in one place.

Redis holds only what can be rebuilt: sessions, locks, caches and membership. The SQL database
behind the analyst is the source of truth for jobs.
"""

from __future__ import annotations

PREFIX = "pp:"


def session(token_hash: str) -> str:
    """A terminal session, stored under a hash of its token (the token itself is never a key)."""
    return f"{PREFIX}session:{token_hash}"


def idempotent_release(session_user: str, key: str) -> str:
    """The stored answer of a release request, so a retried request gets the same answer."""
    return f"{PREFIX}release-idem:{session_user}:{key}"


def login_throttle(subject: str) -> str:
    """A login subject's recent failures (a sorted set): terminal "t:ID", unenrolled "n:IP", address "a:IP",
    user "u:NAME" (pullprint/throttle.py)."""
    return f"{PREFIX}login-throttle:{subject}"


def guest_uploads(subject: str) -> str:
    """Guests' uploads in the current window (a counter): "e:SHA-256 of the address" or "a:IP"."""
    return f"{PREFIX}guest-uploads:{subject}"


def printer_lock(printer_id: str) -> str:
    """The cluster-wide output lock of one printer (value: fencing token + holder)."""
    return f"{PREFIX}lock:printer:{printer_id}"


def printer_fence(printer_id: str) -> str:
    """Monotonic counter whose value is the fencing token of the newest lock holder."""
    return f"{PREFIX}fence:printer:{printer_id}"


def printer_health(printer_id: str) -> str:
    """The newest SNMP health reading of one printer (JSON with its time)."""
    return f"{PREFIX}health:printer:{printer_id}"


def printer_health_history(printer_id: str) -> str:
    """A short capped list of recent health readings of one printer."""
    return f"{PREFIX}health-history:printer:{printer_id}"


def poll_owner(printer_id: str) -> str:
    """Which collector polls this printer this cycle (so no printer is polled twice)."""
    return f"{PREFIX}poll-owner:printer:{printer_id}"


def collector_member(collector_id: str) -> str:
    """A collector's membership record; expires unless the collector keeps heartbeating."""
    return f"{PREFIX}member:collector:{collector_id}"


MEMBERS_PATTERN = f"{PREFIX}member:collector:*"


def collector_metrics(collector_id: str) -> str:
    """A collector's Prometheus counters (a hash: every worker process adds to the same numbers)."""
    return f"{PREFIX}metrics:collector:{collector_id}"


def analyst_down(site: str) -> str:
    """Set (with a short TTL) while a site's collectors cannot reach the analyst: skip it, don't wait for it."""
    return f"{PREFIX}analyst-down:{site}"


def offline_claim(job_id: str) -> str:
    """A job's site claim, taken by every release (SET NX: one collector wins); alone the right to
    send while the analyst is away (collector/site_claims.py)."""
    return f"{PREFIX}offline-claim:{job_id}"


def site_claims_ready(site: str) -> str:
    """Set once this Redis holds every release claim the site needs to decide offline releases.

    Missing after Redis restarted empty: until the collectors have put back the claims of their
    journals and the analyst's releasing and interrupted jobs, nobody releases offline.
    """
    return f"{PREFIX}claims-ready:{site}"


def job_gone(job_id: str) -> str:
    """Marks a job printed or deleted, so a stale copy on a returning node is never released offline."""
    return f"{PREFIX}gone:{job_id}"


def submitted(owner: str, idempotency_key: str) -> str:
    """The job id a CUPS job-uuid became, so a retried submission finds it even while the analyst is away."""
    return f"{PREFIX}submitted:{owner}:{idempotency_key}"
