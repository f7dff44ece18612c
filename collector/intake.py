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
from pullprint.errors import Unavailable
from pullprint.states import JobState
from pullprint.wire import HeaderSource, JobSubmission

log = logging.getLogger(__name__)


def _known_submission(node: Node, seen_key: str | None) -> str | None:
    if not seen_key:
        return None
    try:
        return node.redis.get(seen_key)
    except Exception:  # noqa: BLE001 - without Redis the analyst still catches the repeat
        return None


def submit(node: Node, headers: HeaderSource | Mapping[str, str], body: Iterable[bytes]) -> tuple[dict[str, Any], bool]:
    """Take a submitted document; returns (job, created). Raises PullprintError for bad input."""
    submission = JobSubmission.from_headers(headers)
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
                metrics.count(node.redis, node.id, "jobs_refused_too_few_copies")
                raise Unavailable("too-few-copies", f"only {len(locations)} of the {required} copies this cluster "
                                  f"keeps before acknowledging a job could be made (no other collector is "
                                  f"alive); try again later", copies=len(locations), required=required)
            job = replace(job, locations=tuple(locations))
            incoming.commit(job.to_json())  # the metadata, written once (fsynced), with every copy's place
            try:
                answer, created = node.analyst.register_job(job)
            except AnalystUnavailable:
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
            node.redis.set(seen_key, answer["id"], ex=int(node.config.job_lifetime_hours * 3600), nx=True)
    log.info("job %s from %s: %d bytes, %s pages, copies on %s", answer["id"], submission.owner, stored.size,
             stored.pages, ",".join(locations))
    return answer, created
