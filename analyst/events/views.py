"""HTTP view for reading the event log."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from analyst.events import service
from analyst.web import query_bool, query_int, transaction

bp = Blueprint("events", __name__, url_prefix="/api/v1")


@bp.get("/events")
def list_events() -> ResponseReturnValue:
    since = query_int("since", 0, maximum=2**62)
    limit = query_int("limit", 100, minimum=1, maximum=1000)
    with transaction() as session:
        events = service.list_events(session, since=since, limit=limit, kind=request.args.get("kind") or None,
                                     user=request.args.get("user") or None, job=request.args.get("job") or None,
                                     offline=query_bool("offline"))
        return {"events": [service.event_to_dict(e) for e in events]}
