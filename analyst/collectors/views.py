"""HTTP views for collector heartbeats, the list of collectors and the degraded-mode sync."""

from __future__ import annotations

from flask import Blueprint, g
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.collectors import service
from analyst.printers.service import list_printers, printer_to_dict
from analyst.submitters.service import sync_submitters
from analyst.terminals.service import sync_terminals
from analyst.users.service import sync_users
from analyst.web import analyst, json_body, now, transaction
from pullprint.errors import Forbidden

bp = Blueprint("collectors", __name__, url_prefix="/api/v1")


def _all(session: Session) -> dict[str, object]:
    at, dead_after = now(), analyst().config.collector_dead_after
    return {"collectors": [service.collector_to_dict(c, now=at, dead_after=dead_after)
                           for c in service.list_collectors(session)]}


@bp.post("/collectors/<collector_id>/heartbeat")
def heartbeat(collector_id: str) -> ResponseReturnValue:
    collector_id = v.identifier(collector_id, "collector")
    caller = g.get("caller")
    if caller is not None and (caller.role, caller.name) != ("collector", collector_id):
        # Only collector c1 itself (its certificate) says that c1 is alive, and where it is.
        raise Forbidden("forbidden", f"only collector {collector_id}'s own certificate may heartbeat for it")
    body = json_body(optional=True)
    with transaction() as session:
        service.heartbeat(session, collector_id, url=v.text(body, "url", default="", max_len=1024) or "",
                          site=v.text(body, "site", default="main", max_len=64, pattern=v.ID_PATTERN) or "main",
                          now=now(), report=service.NodeReport(
                              version=v.text(body, "version", max_len=64),
                              spool_jobs=v.integer(body, "spool_jobs", minimum=0, maximum=2**31 - 1),
                              journal_entries=v.integer(body, "journal_entries", minimum=0, maximum=2**31 - 1)))
        session.flush()
        return _all(session)


@bp.get("/collectors")
def list_collectors() -> ResponseReturnValue:
    with transaction() as session:
        return _all(session)


@bp.get("/sync")
def sync() -> ResponseReturnValue:
    with transaction() as session:
        return {"users": sync_users(session),
                # Submitting hosts' token digests: collectors check POST /api/v1/jobs against them.
                "submitters": sync_submitters(session),
                # Enrolled terminals (id, printer, token digest): a terminal's login names its printer
                # through its credential; a revoked one is gone from the next sync.
                "terminals": sync_terminals(session),
                # Collectors poll the printers over SNMPv3, so they (and only they) get the keys in clear.
                "printers": [printer_to_dict(p, secrets=True) for p in list_printers(session)]}
