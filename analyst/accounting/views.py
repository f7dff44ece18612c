"""HTTP views for the page reports (JSON, or CSV for spreadsheets)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.accounting import service
from analyst.web import transaction
from pullprint.errors import BadRequest

bp = Blueprint("accounting", __name__, url_prefix="/api/v1")


def _query_time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    # A "+" in a query string arrives as a space when the client did not escape it.
    return v.timestamp({name: raw.replace(" ", "+")}, name)


@bp.get("/reports/pages")
def pages() -> ResponseReturnValue:
    by = request.args.get("by", "")
    if by not in service.REPORT_KEYS:
        raise BadRequest("bad-field", f"by must be one of {', '.join(service.REPORT_KEYS)}", field="by")
    start, end = _query_time("from"), _query_time("to")
    if start is not None and end is not None and end < start:
        raise BadRequest("bad-field", "to must not be before from", field="to")
    output = request.args.get("format", "json")
    if output not in ("json", "csv"):
        raise BadRequest("bad-field", "format must be json or csv", field="format")
    with transaction() as session:
        rows = service.pages_report(session, by=by, start=start, end=end)
    if output == "csv":
        name = f"pages-by-{by}" + "".join(f"-{word}-{at:%Y%m%dT%H%M%SZ}" for word, at in (("from", start), ("to", end))
                                          if at is not None)
        return Response(service.report_csv(rows), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return {"by": by, "from": v.iso(start), "to": v.iso(end), "rows": rows, "total": service.report_total(rows)}
