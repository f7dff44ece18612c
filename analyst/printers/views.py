"""HTTP views for printers."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from analyst.http import json_body, now, transaction
from analyst.printers import service

bp = Blueprint("printers", __name__, url_prefix="/api/v1")


@bp.get("/printers")
def list_printers() -> ResponseReturnValue:
    with transaction() as session:
        return {"printers": [service.printer_to_dict(p) for p in service.list_printers(session)]}


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
