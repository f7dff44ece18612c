"""The console's reports: pages printed per day, user, printer and site (the analyst's accounting), each drawn
as an SVG bar chart on the server, so the page needs no script and nothing from elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from analyst.accounting.models import PrintRecord
from analyst.accounting.service import pages_report
from pullprint.errors import BadRequest

MAX_DAYS = 366
DEFAULT_DAYS = 30
TOP = 20  # bars per chart; the table under it lists every row


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def parse_period(first: str, last: str, *, today: date) -> Period:
    """The days from `first` to `last` (YYYY-MM-DD; default: the last 30 days up to today)."""
    try:
        end = date.fromisoformat(last) if last else today
    except ValueError:
        raise BadRequest("bad-field", "to must be a date (2026-12-02)", field="to") from None
    try:
        start = date.fromisoformat(first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise BadRequest("bad-field", "from must be a date (2026-12-02)", field="from") from None
    if end < start:
        raise BadRequest("bad-field", "to is before from", field="to")
    if (end - start).days >= MAX_DAYS:
        raise BadRequest("bad-field", f"a report covers at most {MAX_DAYS} days", field="from")
    return Period(start, end)


def pages_per_day(session: Session, period: Period) -> list[tuple[str, int]]:
    """Pages printed (impressions: pages × copies) on each day of the period, UTC."""
    totals = {day: 0 for day in period.days()}
    rows = session.execute(select(PrintRecord.printed_at, PrintRecord.impressions).where(
        PrintRecord.printed_at >= period.start, PrintRecord.printed_at < period.end))
    for printed_at, impressions in rows:
        day = printed_at.astimezone(UTC).date()
        if day in totals:
            totals[day] += int(impressions or 0)
    return [(day.isoformat(), count) for day, count in totals.items()]


def report(session: Session, period: Period) -> dict[str, object]:
    """Every chart of the reports page, and its rows."""
    by_day = pages_per_day(session, period)
    charts: dict[str, object] = {"day": {"rows": by_day, "svg": column_chart(by_day, "Pages printed per day")}}
    for by in ("user", "printer", "site"):
        rows = pages_report(session, by=by, start=period.start, end=period.end)
        ranked = sorted(((str(r["key"]), int(r["impressions"])) for r in rows), key=lambda kv: (-kv[1], kv[0]))
        charts[by] = {"rows": rows, "svg": bar_chart(ranked[:TOP], f"Pages printed per {by}")}
    return charts


# --- SVG --------------------------------------------------------------------------------------------------------

def _scale(values: list[int]) -> int:
    return max([1, *values])


def bar_chart(rows: list[tuple[str, int]], title: str) -> Markup:
    """Horizontal bars, one per row, labelled and with their value."""
    width, label_w, bar_h, gap = 640, 150, 18, 6
    height = max(1, len(rows)) * (bar_h + gap) + 30
    top = _scale([value for _, value in rows])
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    if not rows:
        parts.append('<text x="10" y="30">nothing printed in this period</text>')
    for n, (label, value) in enumerate(rows):
        y = 10 + n * (bar_h + gap)
        length = round((width - label_w - 70) * value / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label[:24])}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y}" width="{length}" height="{bar_h}">'
                     f"<title>{escape(label)}: {value}</title></rect>"
                     f'<text x="{label_w + length + 4}" y="{y + 13}">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above


def column_chart(rows: list[tuple[str, int]], title: str) -> Markup:
    """One column per day, the days along the bottom (every seventh labelled)."""
    width, height, left, bottom = 760, 220, 40, 40
    plot_h = height - bottom - 10
    top = _scale([value for _, value in rows])
    step = (width - left - 10) / max(1, len(rows))
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<line class="axis" x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}"/>',
             f'<text x="{left - 4}" y="18" text-anchor="end">{top}</text>']
    for n, (day, value) in enumerate(rows):
        bar = round(plot_h * value / top)
        x = left + n * step
        parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{10 + plot_h - bar}" width="{max(1.0, step - 2):.1f}" '
                     f'height="{bar}"><title>{escape(day)}: {value}</title></rect>')
        if n % 7 == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 22}">{escape(day[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above
