"""Collector ↔ collector calls (mutual TLS, collector certificates only): replicas, fetch, print, delete, lookups."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context

from collector import copies, site_claims
from collector.peers import META_HEADER, decode_meta, encode_meta
from collector.release import Claim, print_here
from collector.spool import check_job_id
from collector.web import json_body, node
from nodeserver import peer
from pullprint.errors import BadRequest, Forbidden, NotFound, Unavailable

log = logging.getLogger(__name__)

bp = Blueprint("internal", __name__, url_prefix="/internal/v1")


@bp.before_request
def authenticate() -> None:
    """Only another collector (its certificate says so) may make these calls; the analyst may also
    have a copy shredded (a job deleted in the console: the analyst's record already says deleted)."""
    if request.endpoint == "internal.delete_copy" and request.method == "DELETE":
        peer.require("collector", "analyst")
    else:
        peer.require("collector")


@bp.put("/replicas/<job_id>")
def store_replica(job_id: str) -> tuple[Response, int]:
    check_job_id(job_id)
    try:
        meta = decode_meta(request.headers.get(META_HEADER, ""))
    except ValueError:
        raise BadRequest("bad-meta", f"the {META_HEADER} header is missing or malformed") from None
    if node().spool.retiring:  # the sender tries another peer
        raise Unavailable("retiring", f"{node().id} is handing its jobs over before it retires: it takes no copy")
    node().spool.store_replica(job_id, request.stream, meta, limit=node().config.max_job_bytes)
    return jsonify({"stored": job_id, "collector": node().id}), 201


@bp.put("/replicas/<job_id>/commit")
def commit_replica(job_id: str) -> Response:
    node().spool.update_meta(check_job_id(job_id), provisional=False)
    return jsonify({"committed": job_id})


@bp.get("/jobs/<job_id>/spool")
def fetch_spool(job_id: str) -> Response:
    n = node()
    meta = n.spool.meta(job_id)
    fh = n.spool.open_sealed(job_id)

    def chunks() -> Iterator[bytes]:
        with fh:
            while block := fh.read(64 * 1024):
                yield block

    return Response(stream_with_context(chunks()), mimetype="application/octet-stream",
                    headers={META_HEADER: encode_meta(meta)})


@bp.post("/jobs/<job_id>/print")
def direct_print(job_id: str) -> Response:
    """Print a job held here for the collector that claimed it: to a printer of the directory, named by id
    (never an address from the request), under a claim the analyst (or, the analyst away, the site's
    sealed claim in Redis) confirms; anything else is refused before a byte is decrypted."""
    caller = peer.require("collector")
    body = json_body()
    printer_ref, claim_body = body.get("printer"), body.get("claim")
    printer_id = printer_ref.get("id") if isinstance(printer_ref, dict) else printer_ref
    if not isinstance(printer_id, str) or not printer_id or not isinstance(claim_body, dict):
        raise BadRequest("bad-print-request", "a direct print needs the printer's id and the claim")
    claim = Claim.from_json(check_job_id(job_id), claim_body)
    n = node()
    if not copies.printable_here(n, job_id, offline=bool(claim.offline_at)):
        raise NotFound("no-copy", "this collector holds no printable copy of the job")
    printer = n.directory.printer(printer_id)  # NotFound for a printer the directory does not have
    refusal = site_claims.confirm(n, job_id, user=claim.user, token=claim.token, offline=bool(claim.offline_at),
                                  printer_id=printer_id, caller=caller.name if caller else None)
    if refusal:
        log.warning("direct print of %s for %s refused: %s", job_id, caller or "an unidentified caller", refusal)
        raise Forbidden(refusal, "the analyst does not confirm this claim on the job for this printer")
    locations = [loc for loc in body.get("locations", []) if isinstance(loc, str)]
    return jsonify(print_here(n, claim, printer, locations).to_json())


@bp.delete("/jobs/<job_id>")
def delete_copy(job_id: str) -> Response:
    """Crypto-shred this node's copy of the job (its key destroyed, collector/spool.py)."""
    deleted = node().spool.delete(check_job_id(job_id))
    if deleted:
        log.info("copy of job %s shredded at the request of %s", job_id, getattr(peer.current(), "name", "a caller"))
    return jsonify({"deleted": deleted})


@bp.get("/users/<user>/jobs")
def held_for_user(user: str) -> Response:
    return jsonify({"jobs": copies.held_here(node(), user)})
