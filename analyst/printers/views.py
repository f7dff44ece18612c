"""HTTP views for printers: inventory and search, status reports from the pollers, service state."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.printers import service
from analyst.web import json_body, now, transaction
from pullprint.errors import BadRequest

bp = Blueprint("printers", __name__, url_prefix="/api/v1")


def _query() -> service.PrinterQuery:
    args = request.args
    for name in ("q", "site", "building", "floor"):
        if len(args.get(name, "")) > 255:
            raise BadRequest("bad-field", f"{name} is too long", field=name)
    return service.PrinterQuery(keyword=args.get("q", "").strip(), tags=args.getlist("tag"),
                                capabilities=args.getlist("capability"), site=args.get("site", ""),
                                building=args.get("building", ""), floor=args.get("floor", ""))


@bp.get("/printers")
def list_printers() -> ResponseReturnValue:
    query = _query()
    with transaction() as session:
        return {"printers": [service.printer_to_dict(p) for p in service.search_printers(session, query)]}


@bp.get("/printers/<printer_id>")
def get(printer_id: str) -> ResponseReturnValue:
    with transaction() as session:
        return {"printer": service.printer_to_dict(service.get_printer(session, printer_id))}


@bp.post("/printers")
def upsert() -> ResponseReturnValue:
    fields = service.parse_printer(json_body(), partial=True)
    with transaction() as session:
        printer, created = service.upsert_printer(session, fields, now=now())
        return {"printer": service.printer_to_dict(printer)}, 201 if created else 200


@bp.delete("/printers/<printer_id>")
def remove(printer_id: str) -> ResponseReturnValue:
    with transaction() as session:
        service.remove_printer(session, printer_id, now=now())
    return {"deleted": printer_id}


@bp.put("/printers/<printer_id>/status")
def report_status(printer_id: str) -> ResponseReturnValue:
    report = service.StatusReport.from_dict(json_body())
    with transaction() as session:
        printer, changed = service.report_status(session, printer_id, report, now=now())
        return {"printer": service.printer_to_dict(printer), "changed": changed}


@bp.put("/printers/<printer_id>/service")
def set_service(printer_id: str) -> ResponseReturnValue:
    body = json_body()
    in_service = v.boolean(body, "in_service")
    if in_service is None:
        raise BadRequest("missing-field", "in_service is required", field="in_service")
    reason = v.text(body, "reason", default="", max_len=255) or ""
    with transaction() as session:
        printer = service.set_in_service(session, printer_id, in_service=in_service, reason=reason, now=now())
        return {"printer": service.printer_to_dict(printer)}
