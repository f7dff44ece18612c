"""Writing and reading the event log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analyst.events.models import Event
from analyst.validate import iso


@dataclass(frozen=True)
class Replay:
    """A call a collector replays from its journal: it acted at `at` while the analyst was unreachable."""

    at: datetime
    replayed_at: datetime


def record_event(session: Session, kind: str, *, now: datetime, user: str | None = None, job: str | None = None,
                 printer: str | None = None, collector: str | None = None,
                 detail: dict[str, Any] | None = None, replay: Replay | None = None) -> Event:
    """Append an event in the caller's transaction, so it is logged exactly when the change commits.

    A replayed event carries the time it happened as `at`, and `detail.offline`/`detail.replayed_at`.
    Callers never pass badge numbers, PINs or tokens in `detail`.
    """
    detail = dict(detail or {})
    if replay is not None:
        detail.update(offline=True, replayed_at=iso(replay.replayed_at))
    event = Event(at=replay.at if replay else now, kind=kind, user_name=user, job_id=job, printer_id=printer,
                  collector_id=collector, detail=detail, offline=replay is not None)
    session.add(event)
    return event


def list_events(session: Session, *, since: int = 0, limit: int = 100, kind: str | None = None,
                user: str | None = None, job: str | None = None, offline: bool | None = None) -> list[Event]:
    """Events with an id above `since`, oldest first."""
    query = select(Event).where(Event.id > since)
    if offline is not None:
        query = query.where(Event.offline.is_(offline))
    if kind:
        query = query.where(Event.kind == kind)
    if user:
        query = query.where(Event.user_name == user)
    if job:
        query = query.where(Event.job_id == job)
    return list(session.scalars(query.order_by(Event.id).limit(limit)))


def latest_events(session: Session, *, limit: int = 100) -> list[Event]:
    """The newest `limit` events, newest first (the console's view)."""
    return list(session.scalars(select(Event).order_by(Event.id.desc()).limit(limit)))


def count_by_kind(session: Session) -> dict[str, int]:
    rows = session.execute(select(Event.kind, func.count()).group_by(Event.kind))
    return {kind: count for kind, count in rows}


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"id": event.id, "at": iso(event.at), "kind": event.kind, "user": event.user_name,
            "job": event.job_id, "printer": event.printer_id, "collector": event.collector_id,
            "detail": event.detail or {}}
