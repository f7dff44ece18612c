"""HTTP views for jobs: thin wrappers around analyst.jobs.service."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.jobs import service
from analyst.web import analyst, json_body, now, query_int, read_replay, transaction
from pullprint.errors import BadRequest
from pullprint.states import JobState
from pullprint.wire import MAX_COPIES

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")


@bp.post("/jobs")
def register() -> ResponseReturnValue:
    body = json_body()
    reg = service.registration(body)
    replay = read_replay(body)
    with transaction() as session:
        cfg = analyst().config
        quota = service.Quota(cfg.max_held_jobs_per_user, cfg.max_held_bytes_per_user)
        job, created = service.register_job(session, reg, now=now(), lifetime=analyst().lifetime, replay=replay,
                                            quota=quota)
        answer = {"job": service.job_to_dict(job), "created": created}
    return answer, 201 if created else 200


@bp.get("/jobs/<job_id>")
def get(job_id: str) -> ResponseReturnValue:
    with transaction() as session:
        return {"job": service.job_to_dict(service.get_job(session, job_id))}


@bp.get("/jobs")
def search() -> ResponseReturnValue:
    state = request.args.get("state") or None
    if state is not None and state not in {s.value for s in JobState}:
        raise BadRequest("bad-field", f"unknown state {state!r}", field="state")
    with transaction() as session:
        jobs = service.list_jobs(session, state=state, reason=request.args.get("reason") or None,
                                 location=request.args.get("location") or None,
                                 owner=request.args.get("owner") or None,
                                 limit=(limit := query_int("limit", 1000, minimum=1, maximum=10_000)),
                                 after=request.args.get("after") or None)
        answer: dict[str, Any] = {"jobs": [service.job_to_dict(job) for job in jobs]}
        if len(jobs) == limit:  # there may be more: the next page starts after the last job here
            answer["next"] = service.page_cursor(jobs[-1])
        return answer


LOOKUP_MAX = 1000


@bp.post("/jobs/lookup")
def lookup() -> ResponseReturnValue:
    body = json_body()
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > LOOKUP_MAX:
        raise BadRequest("bad-field", f"ids must be a list of at most {LOOKUP_MAX} job ids", field="ids")
    # A string that is no job id (every registration checks ids) names no job; it never reaches SQL.
    ids = [i for i in ids if v.ID_PATTERN.match(i)]
    with transaction() as session:
        return {"jobs": {job.id: service.job_to_dict(job) for job in service.lookup_jobs(session, ids)}}


@bp.get("/users/<name>/jobs")
def user_jobs(name: str) -> ResponseReturnValue:
    limit = query_int("limit", 0, minimum=1, maximum=10_000) or None  # absent: all of them
    with transaction() as session:
        jobs, total = service.user_jobs(session, name, limit)
        return {"jobs": jobs, "total": total}


@bp.post("/jobs/<job_id>/claim")
def claim(job_id: str) -> ResponseReturnValue:
    body = json_body()
    config = analyst().config
    user = v.user_name(v.required_text(body, "user", max_len=64))
    collector = v.identifier(v.required_text(body, "collector"), "collector")
    printer = v.identifier(v.required_text(body, "printer"), "printer")
    lease = v.number(body, "lease_seconds", default=config.default_lease_seconds, minimum=0.001,
                     maximum=config.max_lease_seconds)
    assert lease is not None
    replay = read_replay(body)
    with transaction() as session:
        job, token = service.claim_job(session, job_id, user=user, collector=collector, printer=printer,
                                       lease_seconds=lease, now=now(), replay=replay,
                                       confirm_interrupted=body.get("confirm_interrupted") is True)
        return {"job": service.job_to_dict(job), "token": token}


@bp.post("/jobs/<job_id>/renew")
def renew(job_id: str) -> ResponseReturnValue:
    body = json_body()
    token = v.integer(body, "token", required=True, minimum=0, maximum=v.SQL_INTEGER)
    lease = v.number(body, "lease_seconds", default=analyst().config.default_lease_seconds, minimum=0.001,
                     maximum=analyst().config.max_lease_seconds)
    assert token is not None and lease is not None
    with transaction() as session:
        job = service.renew_claim(session, job_id, token=token, lease_seconds=lease, now=now())
        return {"job": service.job_to_dict(job)}


@bp.post("/jobs/<job_id>/finish")
def finish(job_id: str) -> ResponseReturnValue:
    body = json_body()
    token = v.integer(body, "token", required=True, minimum=0, maximum=v.SQL_INTEGER)
    assert token is not None
    state = v.required_text(body, "state", max_len=16)
    printer = v.text(body, "printer", max_len=64)
    collector = v.text(body, "collector", max_len=64)
    replay = read_replay(body)
    with transaction() as session:
        job = service.finish_job(
            session, job_id, token=token, state=state, reason=v.text(body, "reason", default="", max_len=1000) or "",
            printer=v.identifier(printer, "printer") if printer else None,
            collector=v.identifier(collector, "collector") if collector else None,
            pages=v.integer(body, "pages", minimum=0, maximum=v.SQL_INTEGER),
            copies=v.integer(body, "copies", minimum=1, maximum=MAX_COPIES),
            duplex=v.boolean(body, "duplex"), color=v.boolean(body, "color"), now=now(), replay=replay)
        return {"job": service.job_to_dict(job)}


@bp.delete("/jobs/<job_id>")
def delete(job_id: str) -> ResponseReturnValue:
    body = json_body(optional=True)
    user = v.text(body, "user", max_len=64)
    with transaction() as session:
        job = service.delete_job(session, job_id, user=v.user_name(user) if user else None,
                                 reason=v.text(body, "reason", default="", max_len=1000) or "", now=now())
        return {"job": service.job_to_dict(job)}


@bp.put("/jobs/<job_id>/locations/<collector>")
def add_location(job_id: str, collector: str) -> ResponseReturnValue:
    collector = v.identifier(collector, "collector")
    with transaction() as session:
        return {"job": service.job_to_dict(service.add_location(session, job_id, collector, now=now()))}


@bp.delete("/jobs/<job_id>/locations/<collector>")
def remove_location(job_id: str, collector: str) -> ResponseReturnValue:
    with transaction() as session:
        return {"job": service.job_to_dict(service.remove_location(session, job_id, collector))}


@bp.post("/maintenance/expire")
def expire() -> ResponseReturnValue:
    json_body(optional=True)
    grace = timedelta(seconds=analyst().config.lease_grace_seconds)
    with transaction() as session:
        # Interrupted first: one of those past its lifetime then expires in the same call.
        interrupted = [service.job_to_dict(job) for job in service.interrupt_releases(session, now=now(), grace=grace)]
    # Then the expired, a batch per transaction: a long sweep never holds the write lock for long.
    expired: list[dict[str, Any]] = []
    while True:
        with transaction() as session:
            batch = service.expire_jobs(session, now=now(), limit=service.EXPIRE_BATCH)
            expired.extend(service.job_to_dict(job) for job in batch)
        if len(batch) < service.EXPIRE_BATCH:
            break
        if analyst().db.url.startswith("sqlite"):
            # SQLite has one writer and no queue: a registration or login waiting for the lock
            # sleeps in its busy handler (up to 100 ms a turn) and would keep missing the moment
            # between two batches. The pause lets every waiting writer in.
            time.sleep(service.EXPIRE_PAUSE_SECONDS)
    expired.sort(key=lambda job: (job["submitted_at"], job["id"]))
    return {"expired": expired, "interrupted": interrupted}
