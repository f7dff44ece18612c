"""HTTP views for release terminals: administration (add, list, revoke, enrollment links) and the
collectors' redemption of an enrollment code."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.terminals import service
from analyst.web import json_body, now, transaction
from pullprint.errors import NotFound

bp = Blueprint("terminals", __name__, url_prefix="/api/v1")


@bp.post("/terminals")
def add() -> ResponseReturnValue:
    body = json_body()
    printer = v.identifier(v.required_text(body, "printer", max_len=64), "printer")
    description = v.text(body, "description", max_len=service.MAX_DESCRIPTION) or ""
    terminal_id = v.text(body, "id", max_len=62)
    with transaction() as session:
        terminal, token = service.add_terminal(session, printer, now=now(), description=description,
                                               terminal_id=terminal_id)
        # The only time the token is shown: the analyst keeps its SHA-256 digest, never the token.
        return {"terminal": service.terminal_to_dict(terminal, now=now()), "token": token}, 201


@bp.get("/terminals")
def list_terminals() -> ResponseReturnValue:
    with transaction() as session:
        return {"terminals": [service.terminal_to_dict(t, now=now()) for t in service.list_terminals(session)]}


@bp.get("/terminals/<terminal_id>")
def get(terminal_id: str) -> ResponseReturnValue:
    with transaction() as session:
        return {"terminal": service.terminal_to_dict(service.get_terminal(session, terminal_id), now=now())}


@bp.delete("/terminals/<terminal_id>")
def revoke(terminal_id: str) -> ResponseReturnValue:
    with transaction() as session:
        terminal = service.revoke_terminal(session, terminal_id, now=now())
        return {"terminal": service.terminal_to_dict(terminal, now=now())}


@bp.post("/terminals/<terminal_id>/enrollment")
def enrollment(terminal_id: str) -> ResponseReturnValue:
    """A one-time enrollment code (shown once) for the kiosk page's link: /release/enroll#code=CODE."""
    body = json_body(optional=True)
    minutes = v.number(body, "valid_minutes", default=service.ENROLLMENT_VALID.total_seconds() / 60,
                       minimum=1, maximum=service.MAX_ENROLLMENT_VALID.total_seconds() / 60)
    assert minutes is not None
    with transaction() as session:
        terminal, code = service.new_enrollment(session, terminal_id, now=now(),
                                                valid=timedelta(minutes=minutes))
        return {"terminal": service.terminal_to_dict(terminal, now=now()), "code": code,
                "expires_at": v.iso(terminal.enrollment_expires_at), "path": f"/release/enroll#code={code}"}, 201


@bp.post("/terminals/enroll")
def redeem() -> ResponseReturnValue:
    """A collector redeems the code a kiosk page sent it: the terminal and its fresh token (shown once)."""
    code = v.required_text(json_body(), "code", max_len=64)
    with transaction() as session:
        terminal, token = service.redeem_enrollment(session, code, now=now())
        return {"terminal": service.terminal_to_dict(terminal, now=now()), "token": token}, 201


@bp.post("/terminals/lookup")
def lookup() -> ResponseReturnValue:
    """A collector asks after a terminal credential its directory does not hold yet (enrolled since its
    last sync): the active terminal with that token digest, or 404."""
    digest = v.required_text(json_body(), "token_hash", max_len=64)
    with transaction() as session:
        terminal = service.terminal_by_digest(session, digest)
        if terminal is None:
            raise NotFound("unknown-terminal", "no active terminal has this credential")
        return {"terminal": {"id": terminal.id, "printer": terminal.printer_id}}
