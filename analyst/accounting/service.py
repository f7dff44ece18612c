"""Accounting: what a print counts (pages, copies, impressions, sheets, duplex, colour), and the page reports."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from analyst.accounting.models import PrintRecord
from analyst.jobs.models import Job
from pullprint.wire import is_color, is_duplex

# "source": the way the job came in, its submitting host (a print server, the mail gateway's host, or
# web-upload for the upload page), from the job's record, which is never deleted.
REPORT_KEYS = {"user": PrintRecord.user_name, "printer": PrintRecord.printer_id, "site": PrintRecord.site,
               "source": func.coalesce(Job.origin_host, "")}
REPORT_FIELDS = ("key", "jobs", "pages", "unknown_page_jobs", "copies", "impressions", "sheets",
                 "duplex_jobs", "color_jobs")


def _number_up(options: Mapping[str, str] | None) -> int:
    try:
        value = int((options or {}).get("number-up", "1"))
    except ValueError:
        return 1
    return value if 1 <= value <= 16 else 1


@dataclass(frozen=True)
class PrintCounts:
    """What one release counts; `impressions` and `sheets` are None when the pages are unknown."""

    pages: int | None
    copies: int
    duplex: bool
    color: bool
    impressions: int | None
    sheets: int | None


def count_print(pages: int | None, copies: int, options: Mapping[str, str] | None, *,
                duplex: bool | None = None, color: bool | None = None) -> PrintCounts:
    """Derive the counts of a release from the document's pages, the copies and the job's CUPS options.

    Impressions are pages × copies (document pages, as a user thinks of them). Sheets are the paper used:
    `number-up` pages go on one side, and a duplex job puts two sides on each sheet of each copy.
    `duplex`/`color`, when the collector knows better than the options, override them.
    """
    duplex = is_duplex(options) if duplex is None else duplex
    color = is_color(options) if color is None else color
    if pages is None:
        return PrintCounts(None, copies, duplex, color, None, None)
    sides = math.ceil(pages / _number_up(options))
    sheets_per_copy = math.ceil(sides / 2) if duplex else sides
    return PrintCounts(pages, copies, duplex, color, pages * copies, sheets_per_copy * copies)


def record_print(session: Session, *, job_id: str, user: str, printer: str, collector: str, site: str,
                 counts: PrintCounts, printed_at: datetime, recorded_at: datetime, offline: bool) -> PrintRecord:
    """Add the accounting row of one delivered release in the caller's transaction."""
    record = PrintRecord(job_id=job_id, user_name=user, printer_id=printer, collector_id=collector, site=site,
                         pages=counts.pages, copies=counts.copies, impressions=counts.impressions,
                         sheets=counts.sheets, duplex=counts.duplex, color=counts.color, printed_at=printed_at,
                         offline=offline, recorded_at=recorded_at)
    session.add(record)
    return record


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def pages_report(session: Session, *, by: str, start: datetime | None = None,
                 end: datetime | None = None) -> list[dict[str, Any]]:
    """Rows per user, printer, site or source of prints with `start <= printed_at < end`, ordered by key.

    `pages`, `impressions` and `sheets` add up the jobs whose pages are known; `unknown_page_jobs`
    counts the others, so a document the collector could not count never passes for 0 pages.
    """
    key = REPORT_KEYS[by]
    query = select(
        key.label("key"),
        func.count().label("jobs"),
        func.coalesce(func.sum(PrintRecord.pages), 0).label("pages"),
        _count_if(PrintRecord.pages.is_(None)).label("unknown_page_jobs"),
        func.coalesce(func.sum(PrintRecord.copies), 0).label("copies"),
        func.coalesce(func.sum(PrintRecord.impressions), 0).label("impressions"),
        func.coalesce(func.sum(PrintRecord.sheets), 0).label("sheets"),
        _count_if(PrintRecord.duplex.is_(True)).label("duplex_jobs"),
        _count_if(PrintRecord.color.is_(True)).label("color_jobs"),
    )
    if by == "source":
        query = query.select_from(PrintRecord).outerjoin(Job, Job.id == PrintRecord.job_id)
    if start is not None:
        query = query.where(PrintRecord.printed_at >= start)
    if end is not None:
        query = query.where(PrintRecord.printed_at < end)
    rows = session.execute(query.group_by(key).order_by(key)).mappings()
    return [{name: (row[name] if name == "key" else int(row[name])) for name in REPORT_FIELDS} for row in rows]


def report_total(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The sum of every row's counts."""
    return {name: sum(row[name] for row in rows) for name in REPORT_FIELDS if name != "key"}


def report_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV with a header row (RFC 4180 line ends, as spreadsheets expect)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "key": _spreadsheet_safe(row["key"])})
    return out.getvalue()


def _spreadsheet_safe(value: str) -> str:
    # A user or printer name starting with = + - @ would run as a formula when the CSV is opened.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

