"""Job logic: registration, queries, the claim compare-and-set, finishing, deletion, copies and expiry."""

# Every function works inside the caller's transaction (`session`) and takes the time as `now`, so
# the views, the CLI and the tests share one code path and the tests can move the clock.

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.accounting.service import count_print, record_print
from analyst.events.service import Replay, record_event
from analyst.jobs.models import Job, JobLocation
from analyst.printers.models import Printer
from pullprint import states
from pullprint.errors import BadRequest, Conflict, Forbidden, NotFound
from pullprint.states import FINAL_STATES, INTERRUPTED, JobState
from pullprint.wire import MAX_COPIES, MAX_TITLE, JobSubmission


def _values(of: tuple[JobState, ...]) -> tuple[str, ...]:
    return tuple(state.value for state in of)


# Every `WHERE state IN (…)` below comes from the transition table (pullprint.states.ALLOWED).
RELEASABLE = _values(states.RELEASABLE)
OPEN_STATES = _values(states.OPEN_STATES)
FINISH_STATES = _values(states.FINISH_STATES)
DELETABLE = _values(states.DELETABLE)
EXPIRABLE = _values(states.EXPIRABLE)


def registration(body: Mapping[str, Any]) -> JobSubmission:
    """A `POST /jobs` body as the job record it is (`pullprint.wire.JobSubmission`), every field checked.

    The body comes from the network: this is the analyst's boundary, so nothing in it is taken on
    trust, even from a collector. The times are checked here and read where they are used.
    """
    job_id = v.text(body, "id", default="")
    v.timestamp(body, "submitted_at")
    v.timestamp(body, "expires_at")
    return JobSubmission(
        id=v.identifier(job_id, "id") if job_id else "",
        owner=v.user_name(v.required_text(body, "owner", max_len=64), "owner"),
        title=v.text(body, "title", default="", max_len=MAX_TITLE) or "",
        size=v.integer(body, "size", default=0, minimum=0) or 0,
        sha256=v.text(body, "sha256", default="", max_len=64) or "",
        pages=v.integer(body, "pages", minimum=0, maximum=v.SQL_INTEGER),
        copies=v.integer(body, "copies", default=1, minimum=1, maximum=MAX_COPIES) or 1,
        options=v.text_map(body, "options") or {},
        content_type=v.text(body, "content_type", default="application/octet-stream", max_len=127) or "",
        origin_host=v.text(body, "origin_host", default="") or "",
        cups_job_id=v.text(body, "cups_job_id", default="", max_len=32) or "",
        idempotency_key=v.text(body, "idempotency_key", max_len=128) or "",
        site=v.text(body, "site", default="main", max_len=64) or "main",
        submitted_at=body.get("submitted_at"),
        expires_at=body.get("expires_at"),
        received_by=v.text(body, "received_by", default="", max_len=64) or "",
        locations=tuple(v.text_list(body, "locations", default=[], pattern=v.ID_PATTERN) or []),
        release_code_hash=_code_hash(body),
    )


def _code_hash(body: Mapping[str, Any]) -> str:
    digest = v.text(body, "release_code_hash", default="", max_len=64) or ""
    if digest and not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise BadRequest("bad-field", "release_code_hash must be 64 hex digits", field="release_code_hash")
    return digest


def job_to_dict(job: Job | Row[Any], locations: list[str] | None = None) -> dict[str, Any]:
    """A job as the API answers it (JobDict); from a Job, or from a row of the jobs table and its
    copies' collectors in order (`locations`)."""
    claim = None
    if job.state == JobState.RELEASING:
        claim = {"by": job.claimed_by, "printer": job.claim_printer, "token": job.claim_token,
                 "lease_expires_at": v.iso(job.lease_expires_at)}
    if locations is None:
        assert isinstance(job, Job)
        locations = [loc.collector_id for loc in job.locations]
    return {
        "id": job.id, "owner": job.owner, "title": job.title, "size": job.size, "sha256": job.sha256,
        "pages": job.pages, "copies": job.copies, "options": job.options or {},
        "content_type": job.content_type, "origin_host": job.origin_host, "cups_job_id": job.cups_job_id,
        "idempotency_key": job.idempotency_key or "", "site": job.site, "state": job.state,
        "state_reason": job.state_reason, "submitted_at": v.iso(job.submitted_at),
        "expires_at": v.iso(job.expires_at), "received_by": job.received_by,
        "locations": locations, "claim": claim,
    }


def _find_existing(session: Session, reg: JobSubmission) -> Job | None:
    if reg.id:
        job = session.get(Job, reg.id)
        if job is not None:
            if job.owner != reg.owner:
                raise Conflict("id-conflict", "a job with this id belongs to another user")
            return job
    if reg.idempotency_key:
        return session.scalars(select(Job).where(Job.owner == reg.owner,
                                                 Job.idempotency_key == reg.idempotency_key)).first()
    return None


def _merge_locations(job: Job, collectors: Sequence[str], now: datetime) -> None:
    # A repeated registration (a journal replay, a retry through another collector) may know more copies;
    # a finished job's copies are being shredded, so it gains none.
    if job.state in FINAL_STATES:
        return
    known = {loc.collector_id for loc in job.locations}
    for collector in collectors:
        if collector not in known:
            job.locations.append(JobLocation(collector_id=collector, added_at=now))


@dataclass(frozen=True)
class Quota:
    """What one user may hold at once (analyst.max_held_*_per_user); 0 means no limit."""

    max_jobs: int = 0
    max_bytes: int = 0


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def check_quota(session: Session, owner: str, size: int, quota: Quota) -> None:
    """Refuse (409 quota-exceeded, a message naming the limit) a new job that takes `owner` past `quota`.

    Open jobs count (held, releasing, failed): their copies are what fills the spools.
    """
    if not quota.max_jobs and not quota.max_bytes:
        return
    count, held_bytes = session.execute(
        select(func.count(), func.coalesce(func.sum(Job.size), 0)).where(Job.owner == owner,
                                                                           Job.state.in_(OPEN_STATES))).one()
    if quota.max_jobs and count + 1 > quota.max_jobs:
        raise Conflict("quota-exceeded", f"{owner} already has {count} held jobs and may hold at most "
                       f"{quota.max_jobs}; print or delete some at a printer, then print this again",
                       limit="max_held_jobs_per_user", held_jobs=count, max_jobs=quota.max_jobs)
    if quota.max_bytes and held_bytes + size > quota.max_bytes:
        raise Conflict("quota-exceeded", f"{owner}'s held jobs take {_size(held_bytes)}; with this one "
                       f"({_size(size)}) they would pass the {_size(quota.max_bytes)} one user may hold; "
                       f"print or delete some at a printer, then print this again",
                       limit="max_held_bytes_per_user", held_bytes=held_bytes, max_bytes=quota.max_bytes)


def register_job(session: Session, reg: JobSubmission, *, now: datetime, lifetime: timedelta,
                 replay: Replay | None = None, quota: Quota | None = None) -> tuple[Job, bool]:
    """Create a held job, or find the one this registration repeats; returns (job, created).

    A `replay` (a collector's journal, sent after the analyst was away) dates the job and its event
    when the collector took it in. A new job past the owner's `quota` is refused (409), except on a
    replay: the collector already acknowledged that one to the workstation, so it must not be lost.
    """
    existing = _find_existing(session, reg)
    if existing is not None:
        _merge_locations(existing, reg.locations, now)
        return existing, False
    if quota is not None and replay is None:
        check_quota(session, reg.owner, reg.size, quota)
    submitted = _time(reg.submitted_at) or (replay.at if replay else now)
    job = Job(
        id=reg.id or uuid.uuid4().hex, owner=reg.owner, title=reg.title, size=reg.size, sha256=reg.sha256,
        pages=reg.pages, copies=reg.copies, options=reg.options, content_type=reg.content_type,
        origin_host=reg.origin_host, cups_job_id=reg.cups_job_id, idempotency_key=reg.idempotency_key or None,
        site=reg.site, state=JobState.HELD.value, state_reason="", submitted_at=submitted,
        expires_at=_time(reg.expires_at) or submitted + lifetime, received_by=reg.received_by, claim_token=0,
        updated_at=now, locations=[JobLocation(collector_id=c, added_at=now) for c in reg.locations],
        release_code_hash=reg.release_code_hash or None,
    )
    try:
        # A savepoint, so that losing a race with a concurrent registration of the same job
        # leaves the outer transaction usable for reading the winner.
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        existing = _find_existing(session, reg)
        if existing is None:
            raise
        _merge_locations(existing, reg.locations, now)
        return existing, False
    record_event(session, "submit", now=now, user=job.owner, job=job.id, collector=reg.received_by or None,
                 detail={"title": job.title, "size": job.size, "site": job.site}, replay=replay)
    return job, True


def _time(value: str | None) -> datetime | None:
    return v.timestamp({"time": value}, "time")


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("not-found", f"no job {job_id}")
    return job


def page_cursor(job: Job) -> str:
    """Where the next page of a listing starts: after this job, in (submitted_at, id) order."""
    return f"{v.iso(job.submitted_at)},{job.id}"


def _after(cursor: str) -> ColumnElement[bool]:
    at_text, _, job_id = cursor.partition(",")
    at = v.timestamp({"after": at_text}, "after")
    if at is None or not job_id or len(job_id) > 64:
        raise BadRequest("bad-field", "after: not a cursor this listing gave (its \"next\")", field="after")
    return or_(Job.submitted_at > at, and_(Job.submitted_at == at, Job.id > job_id))


def list_jobs(session: Session, *, state: str | None = None, reason: str | None = None,
              location: str | None = None, owner: str | None = None, limit: int = 1000,
              after: str | None = None) -> list[Job]:
    """Jobs matching every filter given, oldest first; `after` a cursor (`page_cursor`) to go on from."""
    query = select(Job)
    if after:
        query = query.where(_after(after))
    if state:
        query = query.where(Job.state == state)
    if reason:
        query = query.where(Job.state_reason == reason)
    if owner:
        query = query.where(Job.owner == owner)
    if location:
        query = query.where(Job.locations.any(JobLocation.collector_id == location))
    return list(session.scalars(query.order_by(Job.submitted_at, Job.id).limit(limit)))


def lookup_jobs(session: Session, job_ids: list[str]) -> list[Job]:
    """The jobs among `job_ids` that exist (any state): how a collector squares its spool in one call."""
    if not job_ids:
        return []
    return list(session.scalars(select(Job).where(Job.id.in_(job_ids))))


def user_jobs(session: Session, owner: str, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """What the owner sees at a terminal: held, releasing and failed jobs, oldest first (at most
    `limit` of them), as the API answers them, and how many there are in all.

    Every login asks this, so it is read as rows (the jobs, then their copies), without building Job objects."""
    where = (Job.owner == owner, Job.state.in_(OPEN_STATES))
    query = select(*Job.__table__.columns).where(*where).order_by(Job.submitted_at, Job.id)
    rows = session.execute(query.limit(limit) if limit is not None else query).all()
    total = len(rows) if limit is None or len(rows) < limit else \
        int(session.scalar(select(func.count()).select_from(Job).where(*where)) or 0)
    copies: dict[str, list[str]] = {row.id: [] for row in rows}
    for start in range(0, len(rows), 500):  # a bounded IN list, whatever the limit
        ids = [row.id for row in rows[start:start + 500]]
        for job_id, collector in session.execute(
                select(JobLocation.job_id, JobLocation.collector_id).where(JobLocation.job_id.in_(ids))
                .order_by(JobLocation.added_at, JobLocation.collector_id)):
            copies[job_id].append(collector)
    return [job_to_dict(row, copies[row.id]) for row in rows], total


def claim_job(session: Session, job_id: str, *, user: str, collector: str, printer: str,
              lease_seconds: float, now: datetime, replay: Replay | None = None,
              confirm_interrupted: bool = False) -> tuple[Job, int]:
    """Move a job to releasing for `collector`, compare-and-set; returns (job, fencing token).

    One UPDATE decides: only a held or failed job matches, and the database lets exactly one of
    any concurrent claims match it. A job whose last release was interrupted (its releaser died,
    so some or all of it may be lying in a tray) is claimed only with `confirm_interrupted`: the
    user looked at the printer and asked again. That includes taking over a lapsed lease. So a
    retried request, a double tap or a second terminal never prints such a job a second time.
    """
    releasable: ColumnElement[bool] = Job.state.in_(RELEASABLE)
    if not confirm_interrupted:
        releasable = and_(releasable, Job.state_reason != INTERRUPTED)
    # The table's releasing -> releasing: a confirmed claim takes over a lapsed lease.
    takeover = and_(Job.state == JobState.RELEASING.value, Job.lease_expires_at < now)
    won = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.owner == user, or_(releasable, takeover) if confirm_interrupted else releasable)
        .values(state=JobState.RELEASING.value, state_reason="", claim_token=Job.claim_token + 1, claimed_by=collector,
                claim_printer=printer, lease_expires_at=now + timedelta(seconds=lease_seconds),
                updated_at=now)
        .returning(Job.claim_token)
        .execution_options(synchronize_session=False)
    ).first()
    job = session.get(Job, job_id, populate_existing=True)
    if won is None:
        if job is None:
            raise NotFound("not-found", f"no job {job_id}")
        if job.owner != user:
            raise Forbidden("not-owner", "this job belongs to another user")
        lapsed = (job.state == JobState.RELEASING and job.lease_expires_at is not None
                  and job.lease_expires_at < now)
        if job.state_reason == INTERRUPTED or lapsed:
            raise Conflict(INTERRUPTED, "the last release of this job was interrupted: check the printer, "
                           "then confirm to release it again", state=job.state)
        raise Conflict("not-releasable", f"the job is {job.state}", state=job.state)
    assert job is not None
    token = int(won[0])
    record_event(session, "claim", now=now, user=user, job=job_id, printer=printer, collector=collector,
                 detail={"token": token}, replay=replay)
    return job, token


def _still_under_claim(job_id: str, token: int) -> ColumnElement[bool]:
    """The job is still in the hands of claim `token`: releasing, or declared interrupted with
    nobody claiming it since (its releaser was slow, not dead)."""
    return and_(Job.id == job_id, Job.claim_token == token,
                or_(Job.state == JobState.RELEASING.value,
                    and_(Job.state == JobState.HELD.value, Job.state_reason == INTERRUPTED)))


def renew_claim(session: Session, job_id: str, *, token: int, lease_seconds: float, now: datetime) -> Job:
    """Extend the lease of the claim `token` right before its holder sends the job.

    Compare-and-set on the token: a claim someone else has taken since (a user who confirmed an
    interrupted release) is stale, and its holder must not send. A claim whose lease lapsed into
    `interrupted` while its holder waited for the printer, with nobody claiming it since, is still
    this holder's: it goes back to releasing.
    """
    renewed = session.execute(
        update(Job)
        .where(_still_under_claim(job_id, token))
        .values(state=JobState.RELEASING.value, state_reason="",
                lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("not-found", f"no job {job_id}")
    if renewed is None:
        raise Conflict("stale-token", "the claim token is not the current claim's", state=job.state,
                       token=job.claim_token)
    return job


def finish_job(session: Session, job_id: str, *, token: int, state: str, reason: str = "",
               printer: str | None = None, collector: str | None = None, pages: int | None = None,
               copies: int | None = None, duplex: bool | None = None, color: bool | None = None,
               now: datetime, replay: Replay | None = None) -> Job:
    """End a release under the claim `token`: printed (accounted), or back to held/failed with a reason.

    A job that was moved back to held as interrupted still takes the finish of the claim it was
    interrupted under, as long as no one has claimed it since (its token is still the current one):
    the releaser was slow, not dead, and what it reports is what happened at the printer.
    """
    if state not in FINISH_STATES:
        raise BadRequest("bad-field", f"state must be one of {', '.join(FINISH_STATES)}", field="state")
    # Two columns, not the job: loading a Job also loads its locations, and it is loaded after the update.
    before = session.execute(select(Job.state, Job.state_reason).where(Job.id == job_id)).first()
    late = before is not None and before.state == JobState.HELD and before.state_reason == INTERRUPTED
    done = session.execute(
        update(Job)
        .where(_still_under_claim(job_id, token))
        .values(state=state, state_reason="" if state == JobState.PRINTED else reason,
                lease_expires_at=None, updated_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("not-found", f"no job {job_id}")
    if done is None:
        if job.claim_token == token and job.state == state:
            return job  # the same finish again (a retry after a lost answer): nothing more to record
        raise Conflict("stale-token", "the claim token is not the current claim's", state=job.state,
                       token=job.claim_token)
    printer = printer or job.claim_printer or ""
    collector = collector or job.claimed_by or ""
    extra = {"late": True} if late else {}
    if state == JobState.PRINTED:
        site = session.scalar(select(Printer.site).where(Printer.id == printer)) or job.site
        counts = count_print(job.pages if pages is None else pages, job.copies if copies is None else copies,
                             job.options, duplex=duplex, color=color)
        record_print(session, job_id=job.id, user=job.owner, printer=printer, collector=collector, site=site,
                     counts=counts, printed_at=replay.at if replay else now, recorded_at=now,
                     offline=replay is not None)
        record_event(session, "print", now=now, user=job.owner, job=job.id, printer=printer,
                     collector=collector, replay=replay,
                     detail={"pages": counts.pages, "copies": counts.copies, "impressions": counts.impressions,
                             "sheets": counts.sheets, "duplex": counts.duplex, "color": counts.color,
                             "site": site, "token": token, **extra})
    else:
        record_event(session, "release-failed", now=now, user=job.owner, job=job.id, printer=printer,
                     collector=collector, replay=replay,
                     detail={"state": state, "reason": reason, "token": token, **extra})
    return job


def delete_job(session: Session, job_id: str, *, user: str | None = None, reason: str = "",
               now: datetime) -> Job:
    """Delete a held or failed job (its copies are then shredded by the collectors holding them)."""
    job = get_job(session, job_id)
    if user is not None and job.owner != user:
        raise Forbidden("not-owner", "this job belongs to another user")
    if job.state == JobState.DELETED:
        return job
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_(DELETABLE))
        .values(state=JobState.DELETED.value, state_reason=reason, updated_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    job = get_job(session, job_id)
    if done is None:
        raise Conflict("not-deletable", f"the job is {job.state}", state=job.state)
    record_event(session, "delete", now=now, user=user or job.owner, job=job_id,
                 detail={"reason": reason, "by": user or "operator"})
    return job


def add_location(session: Session, job_id: str, collector: str, *, now: datetime) -> Job:
    """Record that `collector` holds a copy (idempotent)."""
    job = get_job(session, job_id)
    if collector not in {loc.collector_id for loc in job.locations}:
        try:
            with session.begin_nested():
                session.add(JobLocation(job_id=job_id, collector_id=collector, added_at=now))
        except IntegrityError:
            pass  # recorded concurrently: the copy is known either way
        session.expire(job, ["locations"])
    return job


def remove_location(session: Session, job_id: str, collector: str) -> Job:
    """Forget `collector`'s copy (idempotent)."""
    job = get_job(session, job_id)
    for loc in list(job.locations):
        if loc.collector_id == collector:
            job.locations.remove(loc)
    session.flush()
    return job


def interrupt_releases(session: Session, *, now: datetime, grace: timedelta) -> list[Job]:
    """Move releasing jobs whose lease lapsed more than `grace` ago back to held (reason ``interrupted``).

    Their releaser died or lost the analyst mid-release. The claim token is kept, so the releaser's own
    late finish is still accepted (see `finish_job`) while any new claim raises it and fences that out.
    """
    rows = session.execute(
        update(Job)
        .where(Job.state == JobState.RELEASING.value, Job.lease_expires_at < now - grace)
        .values(state=JobState.HELD.value, state_reason=INTERRUPTED, lease_expires_at=None, updated_at=now)
        .returning(Job.id, Job.claimed_by, Job.claim_printer, Job.claim_token)
        .execution_options(synchronize_session=False)
    ).all()
    jobs = []
    for job_id, collector, printer, token in rows:
        job = get_job(session, job_id)
        record_event(session, "release-interrupted", now=now, user=job.owner, job=job.id, printer=printer,
                     collector=collector, detail={"token": token})
        jobs.append(job)
    jobs.sort(key=lambda j: (j.submitted_at, j.id))
    return jobs


# How many jobs one expiry transaction moves: a sweep of 100,000 is two hundred short write
# transactions, so registrations (SQLite's one writer) wait milliseconds between them, not the sweep.
EXPIRE_BATCH = 500
EXPIRE_PAUSE_SECONDS = 0.12  # between two batches, on SQLite (analyst.jobs.views.expire)


def expire_jobs(session: Session, *, now: datetime, limit: int = EXPIRE_BATCH) -> list[Job]:
    """Move held and failed jobs past their lifetime to expired (at most `limit` of them, any);
    returns them so copies get shredded."""
    due = (Job.state.in_(EXPIRABLE), Job.expires_at <= now)
    # The conditions stay on the UPDATE itself: a job claimed since the inner SELECT read it is
    # re-checked there (PostgreSQL re-reads a row changed concurrently) and left alone.
    ids = list(session.scalars(
        update(Job)
        .where(*due, Job.id.in_(select(Job.id).where(*due).limit(limit).scalar_subquery()))
        .values(state=JobState.EXPIRED.value, state_reason="expired", updated_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ))
    jobs = _load(session, ids)
    for job in jobs:
        record_event(session, "expire", now=now, user=job.owner, job=job.id,
                     detail={"expires_at": v.iso(job.expires_at)})
    jobs.sort(key=lambda j: (j.submitted_at, j.id))
    return jobs


def _load(session: Session, ids: Sequence[str], chunk: int = 1000) -> list[Job]:
    """The jobs `ids` as they are now, their copies with them: one SELECT per `chunk`, not one per job."""
    jobs: list[Job] = []
    for start in range(0, len(ids), chunk):
        jobs.extend(session.scalars(select(Job).where(Job.id.in_(ids[start:start + chunk]))
                                    .execution_options(populate_existing=True)))
    return jobs


def count_by_state(session: Session) -> dict[str, int]:
    counts = {state.value: 0 for state in JobState}
    for state, count in session.execute(select(Job.state, func.count()).group_by(Job.state)):
        counts[state] = count
    return counts
