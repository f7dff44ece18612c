"""The collector's public HTTP API: job submission (CUPS backend) and the terminal API (sessions, release)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from collector import copies, intake, metrics, status, terminal
from collector.release import mail_printer, print_on_arrival, release_jobs
from collector.sessions import SessionStore
from collector.spool import TruncatedUpload
from collector.web import json_body, login_throttle, node
from nodeserver import peer
from pullprint.errors import Locked, TooManyRequests, Unauthorized
from pullprint.states import JobState
from pullprint.throttle import LoginThrottle
from pullprint.wire import H_PRINT_AT

bp = Blueprint("api", __name__)
READ_SIZE = 64 * 1024


def sessions() -> SessionStore:
    cfg = node().config
    return SessionStore(node().redis, cfg.session_idle_seconds, cfg.session_key)


def _document_chunks() -> Iterator[bytes]:
    """The request body, chunk by chunk; a connection that ends early is a TruncatedUpload."""
    expected = request.content_length
    received = 0
    stream = request.stream
    while True:
        try:
            chunk = stream.read(READ_SIZE)
        except Exception as exc:  # noqa: BLE001 - gunicorn/werkzeug raise several kinds on a dropped client
            raise TruncatedUpload("truncated-upload", "the upload ended before the document did") from exc
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if expected is not None and received != expected:
        raise TruncatedUpload("truncated-upload", f"received {received} of {expected} bytes")


@bp.post("/api/v1/jobs")
def submit_job() -> tuple[Response, int]:
    # Each submitting host has its own credential (analyst: POST /api/v1/submitters); the host it
    # names is the job's originating host, whatever the headers claim.
    host = node().directory.submitter(request.headers.get("Authorization"))
    if host is None:
        raise Unauthorized("unknown-submitter", "this host's submit credential is not valid (unknown or "
                           "revoked); issue one with `pullprint submitter add HOST`")
    # Mail to a printer's own address: that printer is checked before anything is held.
    print_at = (request.headers.get(H_PRINT_AT) or "").strip()
    printer = mail_printer(node(), print_at) if print_at else None
    job, created = intake.submit(node(), request.headers, _document_chunks(), submitter=host)
    metrics.count(node().id, "jobs_received" if created else "jobs_repeated")
    answer = {"id": job["id"], "state": job.get("state", JobState.HELD), "locations": job.get("locations", []),
              "pages": job.get("pages")}
    if "release_code" in job:  # a guest's job: its code, shown this once (the mail gateway mails it)
        answer["release_code"] = job["release_code"]
        if printer is not None:  # and never printed at once: only its code releases it
            answer["printed"] = {"printer": printer["id"], "status": "guest-held",
                                 "message": "a guest's document is printed with its release code only"}
    elif printer is not None and created:
        # A repeated submission is not printed again: the first one was, or it is held.
        answer["printed"] = print_on_arrival(node(), job["id"], str(job.get("owner", "")), printer)
    return jsonify(answer), 201 if created else 200


def _caller(throttle: LoginThrottle | None = None) -> terminal.Caller:
    return terminal.identify(node(), throttle or login_throttle(), request.headers.get("Authorization"),
                             peer.client_address())


@bp.post("/api/v1/sessions")
def create_session() -> tuple[Response, int]:
    n = node()
    throttle = login_throttle()
    try:
        answer = terminal.login(n, sessions(), throttle, _caller(throttle), json_body())
    except (Unauthorized, TooManyRequests, Locked):
        metrics.count(n.id, "logins_failed")
        raise
    metrics.count(n.id, "logins")
    return jsonify(answer), 201


@bp.get("/api/v1/sessions/<token>")
def get_session(token: str) -> Response:
    session = terminal.session_for(sessions(), _caller(), token)
    return jsonify({"user": session.user, "printer": session.printer, **terminal.list_jobs(node(), session)})


@bp.delete("/api/v1/sessions/<token>")
def end_session(token: str) -> Response:
    terminal.session_for(sessions(), _caller(), token)
    sessions().delete(token)
    return jsonify({"ended": True})


@bp.delete("/api/v1/sessions/<token>/jobs/<job_id>")
def delete_job(token: str, job_id: str) -> Response:
    """The session's user deletes one of their own held jobs; every copy is crypto-shredded."""
    session = terminal.session_for(sessions(), _caller(), token)
    return jsonify(terminal.delete_job(node(), session, job_id))


@bp.get("/api/v1/printers/<printer_id>/status")
def printer_status(printer_id: str) -> Response:
    """The printer's state from the SNMP cache, for the station's header (before and after login)."""
    return jsonify(terminal.printer_status(node(), _caller(), printer_id))


@bp.post("/api/v1/sessions/<token>/release")
def release(token: str) -> Response:
    session = terminal.session_for(sessions(), _caller(), token)
    answer = release_jobs(node(), session, terminal.parse_release(json_body()), request.headers.get("Idempotency-Key"))
    printed = sum(1 for r in answer["results"] if r["status"] == JobState.PRINTED)
    metrics.count(node().id, "jobs_printed", printed)
    return jsonify(answer)


@bp.post("/api/v1/terminals/enroll")
def enroll_terminal() -> tuple[Response, int]:
    """Redeem a one-time enrollment code (at the analyst) for the terminal's credential, shown once."""
    return jsonify(terminal.enroll(node(), login_throttle(), peer.client_address(), json_body())), 201


@bp.get("/openapi.json")
def openapi() -> Response:
    from collector.openapi import DOCUMENT

    return jsonify(DOCUMENT)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive", "collector": node().id})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    n = node()
    if not n.spool.writable():
        return jsonify({"ready": False, "reason": "spool is not writable"}), 503
    if n.spool.retiring:  # HAProxy sends it nothing more, drained or not
        return jsonify({"ready": False, "reason": "retiring: handing its jobs over"}), 503
    degraded = []
    # What the heartbeat last saw, not a ping: a slow Redis must not make the health check time out
    # on every collector at once (HAProxy would have no server left).
    if time.monotonic() - status.redis_seen_at(n) > 3 * n.config.heartbeat_seconds:
        degraded.append("redis unreachable: sessions are signed-only, membership comes from the analyst")
    # Under-replicated jobs are reported, not a reason to stop taking work: this node is how they
    # get their copies back.
    census = status.last_census(n)
    replication = {"replicas": n.config.replicas, "min_copies_to_ack": copies.copies_to_ack(n),
                   "under_replicated_jobs": census.under_replicated_jobs if census else None,
                   "replication_lag_seconds": status.replication_lag(census) if census else None,
                   "counted_at": census.counted_at if census else None}
    # Neither an unreachable analyst nor Redis makes a collector unready: it degrades and keeps serving.
    return jsonify({"ready": True, "collector": n.id, "journal": len(n.journal), "degraded": degraded,
                    "replication": replication}), 200


@bp.get("/metrics")
def metrics_view() -> Response:
    n = node()
    gauges = {"spool_jobs": float(len(n.spool.job_ids())), "journal_entries": float(len(n.journal))}
    census = status.last_census(n)
    if census is not None:  # no figure rather than a wrong 0 before the first count
        gauges["under_replicated_jobs"] = float(census.under_replicated_jobs)
        gauges["replication_census_age_seconds"] = max(0.0, time.time() - census.counted_at)
        gauges["replication_lag_seconds"] = status.replication_lag(census)
    return Response(metrics.render(n.redis, n.id, gauges), mimetype="text/plain; version=0.0.4")
