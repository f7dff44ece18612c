"""The console's searches: jobs and events by time range, user, printer, collector, kind and job id, a page at
a time, and the same rows as CSV (cells that a spreadsheet would run as a formula are defused)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.events.models import Event
from analyst.events.service import event_to_dict
from analyst.jobs.models import Job, JobLocation
from pullprint.errors import BadRequest

PER_PAGE = 50
CSV_MAX_ROWS = 100_000
FIELDS = ("since", "until", "user", "printer", "collector", "kind", "job")


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    user: str = ""
    printer: str = ""
    collector: str = ""
    kind: str = ""
    job: str = ""
    page: int = 1

    def query(self, **changes: Any) -> dict[str, str]:
        """These filters as query parameters (for the pager's and the export's links)."""
        values = {"since": _form_time(self.since), "until": _form_time(self.until), "user": self.user,
                  "printer": self.printer, "collector": self.collector, "kind": self.kind, "job": self.job,
                  "page": self.page, **changes}
        return {k: str(x) for k, x in values.items() if x not in ("", None) and not (k == "page" and str(x) == "1")}


def _form_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M") if value else ""


def _time(args: Mapping[str, str], name: str) -> datetime | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("bad-field", f"{name} must be a date or a date and time (2026-12-02T08:30)",
                         field=name) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _word(args: Mapping[str, str], name: str) -> str:
    raw = (args.get(name) or "").strip()
    if raw and not v.ID_PATTERN.match(raw):
        raise BadRequest("bad-field", f"{name}: letters, digits and . _ : @ - only, at most 64", field=name)
    return raw


def parse_filters(args: Mapping[str, str]) -> Filters:
    """The filters of a search form (a 400 naming the field for anything malformed)."""
    raw_page = (args.get("page") or "1").strip()
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= 100_000:
        raise BadRequest("bad-field", "page must be a whole number from 1", field="page")
    filters = Filters(since=_time(args, "since"), until=_time(args, "until"), user=_word(args, "user"),
                      printer=_word(args, "printer"), collector=_word(args, "collector"), kind=_word(args, "kind"),
                      job=_word(args, "job"), page=int(raw_page))
    if filters.since and filters.until and filters.until < filters.since:
        raise BadRequest("bad-field", "until is before since", field="until")
    return filters


def _events_query(f: Filters) -> Select[Any]:
    query = select(Event)
    if f.since:
        query = query.where(Event.at >= f.since)
    if f.until:
        query = query.where(Event.at <= f.until)
    for column, value in ((Event.user_name, f.user), (Event.printer_id, f.printer),
                          (Event.collector_id, f.collector), (Event.kind, f.kind), (Event.job_id, f.job)):
        if value:
            query = query.where(column == value)
    return query


def _jobs_query(f: Filters) -> Select[Any]:
    query = select(Job)
    if f.since:
        query = query.where(Job.submitted_at >= f.since)
    if f.until:
        query = query.where(Job.submitted_at <= f.until)
    if f.user:
        query = query.where(Job.owner == f.user)
    if f.printer:
        # Where it is being released, or printed (its events say so).
        printed = select(Event.job_id).where(Event.printer_id == f.printer, Event.job_id.is_not(None))
        query = query.where(or_(Job.claim_printer == f.printer, Job.id.in_(printed)))
    if f.collector:
        query = query.where(or_(Job.received_by == f.collector,
                                Job.locations.any(JobLocation.collector_id == f.collector)))
    if f.kind:
        query = query.where(Job.state == f.kind)
    if f.job:
        query = query.where(Job.id == f.job)
    return query


def _page(session: Session, query: Select[Any], order: Iterable[Any], page: int,
          per_page: int) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(*order).offset((page - 1) * per_page).limit(per_page)))
    return rows, int(total)


def search_events(session: Session, f: Filters, per_page: int = PER_PAGE) -> tuple[list[dict[str, Any]], int]:
    """A page of matching events, newest first, and how many match in all."""
    rows, total = _page(session, _events_query(f), (Event.id.desc(),), f.page, per_page)
    return [event_to_dict(e) for e in rows], total


def job_row(job: Job) -> dict[str, Any]:
    return {"id": job.id, "owner": job.owner, "title": job.title, "state": job.state, "reason": job.state_reason,
            "pages": job.pages, "copies": job.copies, "site": job.site, "received_by": job.received_by,
            "printer": job.claim_printer or "", "submitted_at": v.iso(job.submitted_at),
            "expires_at": v.iso(job.expires_at), "locations": sorted(loc.collector_id for loc in job.locations)}


def search_jobs(session: Session, f: Filters, per_page: int = PER_PAGE) -> tuple[list[dict[str, Any]], int]:
    """A page of matching jobs, newest first, and how many match in all."""
    rows, total = _page(session, _jobs_query(f), (Job.submitted_at.desc(), Job.id), f.page, per_page)
    return [job_row(j) for j in rows], total


# --- CSV ------------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(item) for item in value)
    elif isinstance(value, dict):
        value = " ".join(f"{key}={item}" for key, item in value.items())
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])
    return out.getvalue()


EVENT_COLUMNS = ("id", "at", "kind", "user", "job", "printer", "collector", "detail")
JOB_COLUMNS = ("id", "owner", "title", "state", "reason", "pages", "copies", "site", "received_by", "printer",
               "submitted_at", "expires_at", "locations")


def events_csv(session: Session, f: Filters) -> str:
    rows, _ = _page(session, _events_query(f), (Event.id.desc(),), 1, CSV_MAX_ROWS)
    return to_csv(EVENT_COLUMNS, (event_to_dict(e) for e in rows))


def jobs_csv(session: Session, f: Filters) -> str:
    rows, _ = _page(session, _jobs_query(f), (Job.submitted_at.desc(), Job.id), 1, CSV_MAX_ROWS)
    return to_csv(JOB_COLUMNS, (job_row(j) for j in rows))
