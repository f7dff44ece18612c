"""Wall-clock times as collectors write them (ISO 8601, UTC) in spool metadata, journal entries and claims."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return now().isoformat()


def younger_than(iso: str, *, seconds: float) -> bool:
    """True when the time `iso` is less than `seconds` ago; False for a time that does not parse."""
    try:
        return (now() - datetime.fromisoformat(iso)).total_seconds() < seconds
    except ValueError:
        return False
