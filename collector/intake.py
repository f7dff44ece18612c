"""Job intake (the submit): stream into the encrypted spool, copy to peers, register at the analyst, acknowledge."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from collector import clock, copies, journal, metrics
from collector.analyst_client import AnalystUnavailable
from collector.node import Node
from collector.pages import PageCounter
from collector.spool import new_job_id
from pullprint import keys
from pullprint.credentials import new_release_code, release_code_hash
from pullprint.errors import BadRequest, Conflict, Unavailable
from pullprint.states import JobState
from pullprint.wire import H_OWNER, H_OWNER_EMAIL, HeaderSource, JobSubmission

log = logging.getLogger(__name__)


def _known_submission(node: Node, seen_key: str | None) -> str | None:
    if not seen_key:
        return None
    try:
        # Sealed by the collector that took the job: a planted id must not swallow a new submission.
        return node.seals.open(seen_key, node.redis.get(seen_key))
    except Exception:  # noqa: BLE001 - without Redis the analyst still catches the repeat
        return None


def _check_copies(node: Node, submission: JobSubmission) -> None:
    limit = node.config.max_copies
    if submission.copies > limit:
        raise BadRequest("too-many-copies", f"{submission.copies} copies asked; at most {limit} copies "
                         f"of one job may be printed here", copies=submission.copies, max_copies=limit)


def _check_offline_quota(node: Node, job: JobSubmission) -> None:
    """With the analyst away, the user's quota as far as this node knows it: the jobs in its own spool.

    Approximate by design (docs/cups.md): jobs held only on other collectors are not counted, and a
    job counted here may have been released meanwhile. The analyst's count at registration is the truth.
    """
    cfg = node.config
    if not cfg.max_held_jobs_per_user and not cfg.max_held_bytes_per_user:
        return
    mine = [meta for meta in node.spool.jobs_of(job.owner) if meta.get("id") != job.id]
    held_bytes = sum(int(meta.get("size") or 0) for meta in mine)
    if cfg.max_held_jobs_per_user and len(mine) + 1 > cfg.max_held_jobs_per_user:
        raise Conflict("quota-exceeded", f"{job.owner} already has {len(mine)} held jobs and may hold at most "
                       f"{cfg.max_held_jobs_per_user}; print or delete some at a printer, then print this again",
                       limit="max_held_jobs_per_user")
    if cfg.max_held_bytes_per_user and held_bytes + job.size > cfg.max_held_bytes_per_user:
        raise Conflict("quota-exceeded", f"{job.owner}'s held jobs take {held_bytes} bytes; with this one "
                       f"({job.size} bytes) they would pass the {cfg.max_held_bytes_per_user} bytes one user may "
                       f"hold; print or delete some at a printer, then print this again",
                       limit="max_held_bytes_per_user")


def _with_owner(node: Node, headers: HeaderSource | Mapping[str, str]) -> tuple[HeaderSource | Mapping[str, str], bool]:
    """`headers` with the owner named, and whether the owner is a guest: the sender's address
    (H_OWNER_EMAIL) resolved by the analyst.

    The analyst's refusal (403 not-serviced, unknown-user, user-denied) is the answer; while it is
    away a mail cannot be given an owner, so the sender retries (503, as for too few copies)."""
    email = (headers.get(H_OWNER_EMAIL) or "").strip()
    if not email:
        return headers, False
    if (headers.get(H_OWNER) or "").strip():
        raise BadRequest("owner-and-email", f"send {H_OWNER} or {H_OWNER_EMAIL}, not both")
    try:
        sender = node.analyst.sender(email)
    except AnalystUnavailable:
        raise Unavailable("analyst-unreachable", "the owner of a mail cannot be found while the analyst is "
                          "unreachable; try again later") from None
    return _Owned(headers, str(sender["user"])), bool(sender.get("guest"))


class _Owned:
    """Request headers with the owner the analyst named for the sender's address."""

    def __init__(self, headers: HeaderSource | Mapping[str, str], owner: str) -> None:
        self.headers, self.owner = headers, owner

    def get(self, key: str, /) -> str | None:
        return self.owner if key.lower() == H_OWNER.lower() else self.headers.get(key)


def submit(node: Node, headers: HeaderSource | Mapping[str, str], body: Iterable[bytes], *,
           submitter: str) -> tuple[dict[str, Any], bool]:
    """Take a document `submitter` (the host its credential names) sent; returns (job, created).

    Raises PullprintError for bad input: a malformed header, too many copies, a full quota.
    """
    if node.spool.retiring:  # drained at the load balancer already; the backend's retry goes elsewhere
        raise Unavailable("retiring", f"{node.id} is handing its jobs over before it retires: send the job "
                          f"to another collector")
    owned, guest = _with_owner(node, headers)
    submission = replace(JobSubmission.from_headers(owned), origin_host=submitter)
    # A guest has no badge or PIN: the job's own release code releases it (shown once, in this answer).
    code = new_release_code() if guest else ""
    if code:
        submission = replace(submission, release_code_hash=release_code_hash(node.config.badge_pepper.encode(), code))
    _check_copies(node, submission)
    if node.directory.denied(submission.owner):
        raise Conflict("user-denied", f"{submission.owner} may not print at the moment (ask IT); nothing new "
                       f"is taken", user=submission.owner)
    seen_key = keys.submitted(submission.owner, submission.idempotency_key) if submission.idempotency_key else None
    known = _known_submission(node, seen_key)
    if known:
        for _ in body:  # read what the client sends, then answer with the first job
            pass
        return {"id": known, "state": JobState.HELD, "locations": []}, False
    now = clock.now()
    job = replace(submission, id=new_job_id(), site=node.config.site, received_by=node.id,
                  submitted_at=now.isoformat(),
                  expires_at=(now + timedelta(hours=node.config.job_lifetime_hours)).isoformat())
    job_id = job.id
    with node.spool.incoming(job_id, body, limit=node.config.max_job_bytes, count_pages=PageCounter()) as incoming:
        stored = incoming.stored
        job = replace(job, size=stored.size, sha256=stored.sha256, pages=stored.pages)
        locations = [node.id]
        try:
            locations += copies.replicate(node, job, incoming.open_sealed)
            required = copies.copies_to_ack(node)
            if len(locations) < required:
                # No live peer could take a copy: refuse rather than acknowledge a job on fewer disks
                # than the operator asked for. The backend retries, then CUPS keeps the job queued.
                metrics.count(node.id, "jobs_refused_too_few_copies")
                raise Unavailable("too-few-copies", f"only {len(locations)} of the {required} copies this cluster "
                                  f"keeps before acknowledging a job could be made (no other collector is "
                                  f"alive); try again later", copies=len(locations), required=required)
            job = replace(job, locations=tuple(locations))
            incoming.commit(job.to_json())  # the metadata, written once (fsynced), with every copy's place
            try:
                answer, created = node.analyst.register_job(job)
            except AnalystUnavailable:
                _check_offline_quota(node, job)
                # Degraded mode: the job is durable here and on a peer; the analyst hears of it on replay.
                node.journal.append(journal.REGISTER, {**job.to_json(), "offline": True, "at": job.submitted_at})
                answer, created = {**job.to_json(), "state": JobState.HELD, "journalled": True}, True
        except BaseException:
            copies.discard_copies(node, job_id, locations)
            raise
    if not created and answer["id"] != job_id:
        # A retried submission (same CUPS job-uuid): the first job stands, this copy goes.
        copies.discard_copies(node, job_id, locations)
    else:
        copies.commit_replicas(node, job_id, locations)
    if seen_key:
        with contextlib.suppress(Exception):
            ttl = int(node.config.job_lifetime_hours * 3600)
            sealed = node.seals.seal(seen_key, answer["id"], ttl_seconds=ttl)
            if not node.redis.set(seen_key, sealed, ex=ttl, nx=True) and not node.seals.valid(
                    seen_key, node.redis.get(seen_key)):
                node.redis.set(seen_key, sealed, ex=ttl)  # a planted value was there: ours replaces it
    log.info("job %s from %s: %d bytes, %s pages, copies on %s", answer["id"], submission.owner, stored.size,
             stored.pages, ",".join(locations))
    if code and created:
        answer = {**answer, "release_code": code}
    return answer, created
