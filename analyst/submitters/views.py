"""HTTP views for submitting hosts: issue a credential (shown once), list, revoke (administration); the lookup of
one (collectors)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.submitters import service
from analyst.web import json_body, now, transaction
from pullprint.errors import NotFound

bp = Blueprint("submitters", __name__, url_prefix="/api/v1")


@bp.post("/submitters")
def issue() -> ResponseReturnValue:
    body = json_body()
    host = service.check_host(v.required_text(body, "host", max_len=255))
    description = v.text(body, "description", max_len=service.MAX_DESCRIPTION)
    with transaction() as session:
        submitter, token, created = service.issue(session, host, now=now(), description=description)
        # The only time the token is shown: the analyst keeps its SHA-256 digest, never the token.
        return {"submitter": service.submitter_to_dict(submitter), "token": token}, 201 if created else 200


@bp.get("/submitters")
def list_submitters() -> ResponseReturnValue:
    with transaction() as session:
        return {"submitters": [service.submitter_to_dict(s) for s in service.list_submitters(session)]}


@bp.delete("/submitters/<host>")
def revoke(host: str) -> ResponseReturnValue:
    with transaction() as session:
        return {"submitter": service.submitter_to_dict(service.revoke(session, host, now=now()))}


@bp.post("/submitters/lookup")
def lookup() -> ResponseReturnValue:
    """A collector asks after a submit credential its directory does not hold yet (issued since its last
    sync): the active host with that token digest, or 404."""
    digest = v.required_text(json_body(), "token_hash", max_len=64)
    with transaction() as session:
        submitter = service.submitter_by_digest(session, digest)
        if submitter is None:
            raise NotFound("unknown-submitter", "no active submitting host has this credential")
        return {"submitter": service.submitter_to_dict(submitter)}
