"""Journal replay: each entry the analyst could not be told is sent once it answers, in order per job."""

from __future__ import annotations

import logging
from typing import Any

from collector import copies, journal, site_claims
from collector.analyst_client import AnalystUnavailable
from collector.clock import younger_than
from collector.journal import Deferred
from collector.node import Node
from pullprint.errors import PullprintError
from pullprint.ids import valid_job_id
from pullprint.states import INTERRUPTED, JobState
from pullprint.wire import JobSubmission

log = logging.getLogger(__name__)


def deliver(node: Node, kind: str, payload: dict[str, Any],
            settled: frozenset[str] = frozenset(), at_start: bool = False) -> None:
    """Send one journalled change to the analyst. Unreachable → raise (retry later); refused → drop it.

    `settled`: jobs whose offline claims have an outcome in the journal (nothing more to say).
    `at_start`: the node is starting, so no release of its own is still going out."""
    if not valid_job_id(payload.get("id")):
        # A damaged or planted entry: its id would go into the analyst's URLs. Dropped, loudly.
        log.error("journal entry %s with a malformed job id %r dropped", kind, str(payload.get("id"))[:80])
        return
    try:
        if kind == journal.REGISTER:
            job, _ = node.analyst.register_job(JobSubmission.from_json(payload), offline_at=payload.get("at"))
            if job["id"] != payload["id"]:
                # While offline, the same CUPS job was accepted twice: the analyst's first one stands.
                node.spool.delete(payload["id"])
        elif kind == journal.FINISH:
            fields = {k: v for k, v in payload.items() if k not in ("id", "token", "state")}
            node.analyst.finish(payload["id"], token=payload["token"], state=payload["state"], **fields)
        elif kind == journal.OFFLINE_RELEASE:
            _replay_offline_release(node, payload)
        elif kind == journal.OFFLINE_CLAIM:
            if payload["id"] in settled:
                return
            if not at_start and younger_than(payload["at"], seconds=node.config.lease_seconds):
                raise Deferred(payload["id"])  # may still be going out (in a worker): its outcome follows
            # Its releaser died mid-release: some or all of it may have printed. The user decides.
            _replay_offline_release(node, {**payload, "state": JobState.HELD, "reason": INTERRUPTED},
                                    keep_site_claim=True)
        elif kind == journal.OFFLINE_CLAIM_SETTLED:
            pass  # only read by replay_journal, to settle the claim before it
        elif kind == journal.LOCATION:
            node.analyst.add_location(payload["id"], payload["collector"])
        elif kind == journal.COPY_LEFT:
            copies.shred_left_copy(node, payload["id"], str(payload.get("collector", "")), str(payload.get("at", "")))
        else:
            log.error("unknown journal entry kind %r dropped", kind)
    except AnalystUnavailable:
        raise
    except PullprintError as exc:
        log.warning("journal entry %s for %s refused by the analyst (%s): dropped", kind, payload.get("id"), exc.code)


def _replay_offline_release(node: Node, payload: dict[str, Any], *, keep_site_claim: bool = False) -> None:
    """A release made while the analyst was away: replayed as the claim and finish it would have been.

    Idempotent: a replay cut short after its claim (the analyst went away again, the node died)
    finds its own claim on the next try and finishes it with that token.
    """
    job_id, at = payload["id"], payload["at"]
    try:
        _, token = node.analyst.claim(job_id, collector=payload["collector"], printer=payload.get("printer", ""),
                                      user=payload["user"], lease_seconds=node.config.lease_seconds, offline_at=at,
                                      confirm_interrupted=True)  # recording what happened, not printing
    except AnalystUnavailable:
        raise
    except PullprintError as exc:
        if exc.status == 404 and younger_than(at, seconds=node.config.job_lifetime_hours * 3600):
            # Registered offline by another collector whose journal has not been replayed yet:
            # keep this entry, let the other jobs' entries go on.
            raise Deferred(job_id) from None
        job = node.analyst.job(job_id) if exc.status == 409 else {}
        claim = job.get("claim") or {}
        if job.get("state") == JobState.RELEASING and claim.get("by") == payload["collector"]:
            token = int(claim["token"])  # our own earlier replay got this far
        elif job.get("state") == payload["state"]:
            return  # already recorded
        else:
            log.error("offline release of %s could not be recorded (%s, now %s): the analyst keeps its state",
                      job_id, exc.code, job.get("state"))
            return
    fields = {k: payload.get(k) for k in ("reason", "printer", "pages", "copies")}
    node.analyst.finish(job_id, token=token, state=payload["state"], collector=payload["collector"],
                        offline_at=at, **{k: v for k, v in fields.items() if v is not None})
    if not keep_site_claim:  # an interrupted job keeps it: no offline release may print it again
        site_claims.release(node, job_id)


def replay_journal(node: Node, *, at_start: bool = False) -> int:
    settled = journal.settled_offline_claims(node.journal.entries())
    try:
        return node.journal.replay(lambda kind, payload: deliver(node, kind, payload, settled, at_start))
    except AnalystUnavailable:
        return 0
