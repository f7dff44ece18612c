"""Collector membership: heartbeats upsert a row; `alive` is a recent heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analyst.collectors.models import Collector
from analyst.validate import iso


@dataclass(frozen=True)
class NodeReport:
    """What a heartbeat may tell of the collector beyond its address (None: it did not say)."""

    version: str | None = None
    spool_jobs: int | None = None
    journal_entries: int | None = None


def heartbeat(session: Session, collector_id: str, *, url: str, site: str, now: datetime,
              report: NodeReport | None = None) -> Collector:
    """Record that `collector_id` is alive now, at `url`, in `site`."""
    collector = session.get(Collector, collector_id)
    if collector is None:
        collector = Collector(id=collector_id, url=url, site=site, first_seen=now, last_seen=now, version="")
        if report is not None:
            _apply(collector, report)
        try:
            with session.begin_nested():
                session.add(collector)
            return collector
        except IntegrityError:
            # Its previous heartbeat, sent through another analyst, created the row a moment ago.
            collector = session.get(Collector, collector_id, populate_existing=True)
            assert collector is not None
    collector.url, collector.site = url or collector.url, site or collector.site
    # Heartbeats can arrive out of order through different analysts; last_seen never goes back.
    if now >= collector.last_seen and report is not None:
        _apply(collector, report)
    collector.last_seen = max(collector.last_seen, now)
    return collector


def _apply(collector: Collector, report: NodeReport) -> None:
    if report.version is not None:
        collector.version = report.version
    if report.spool_jobs is not None:
        collector.spool_jobs = report.spool_jobs
    if report.journal_entries is not None:
        collector.journal_entries = report.journal_entries


def list_collectors(session: Session) -> list[Collector]:
    return list(session.scalars(select(Collector).order_by(Collector.id)))


def collector_to_dict(collector: Collector, *, now: datetime, dead_after: float) -> dict[str, Any]:
    alive = now - collector.last_seen <= timedelta(seconds=dead_after)
    return {"id": collector.id, "url": collector.url, "site": collector.site,
            "last_seen": iso(collector.last_seen), "alive": alive, "version": collector.version or "",
            "spool_jobs": collector.spool_jobs, "journal_entries": collector.journal_entries}
