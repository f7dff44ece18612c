"""A release terminal's login (badge or user + PIN), its list of the user's jobs, and its release requests parsed."""

from __future__ import annotations

import concurrent.futures
import logging
from dataclasses import dataclass
from typing import Any

from collector import copies, site_claims
from collector.analyst_client import AnalystUnavailable
from collector.membership import Member
from collector.messages import MESSAGES
from collector.node import Node
from collector.peers import PeerUnreachable
from collector.sessions import LoginGuard, Session, SessionStore
from pullprint.errors import BadRequest, PullprintError, Unauthorized
from pullprint.states import INTERRUPTED, OPEN_STATES, RELEASABLE, JobState

log = logging.getLogger(__name__)

_BADGE_MAX = 128
_PIN_MAX = 32


def parse_credentials(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(printer, credentials) from a login body; 400 for anything malformed."""
    printer = body.get("printer")
    if not isinstance(printer, str) or not printer.strip():
        raise BadRequest("missing-printer", "the terminal must say which printer it stands at")
    if "badge" in body:
        badge = body["badge"]
        if not isinstance(badge, str) or not badge.strip() or len(badge) > _BADGE_MAX:
            raise BadRequest("bad-badge", "the badge must be a non-empty string")
        return printer.strip(), {"badge": badge.strip()}
    user, pin = body.get("user"), body.get("pin")
    if not isinstance(user, str) or not isinstance(pin, str) or not user or not pin or len(pin) > _PIN_MAX:
        raise BadRequest("missing-credentials", "log in with a badge, or with a user name and a PIN")
    return printer.strip(), {"user": user.strip(), "pin": pin}


@dataclass(frozen=True)
class ReleaseRequest:
    """What a terminal asked to release: the named jobs, or all the user's available ones (`jobs` None)."""

    jobs: list[str] | None
    confirm_interrupted: bool = False  # the user looked at the printer: interrupted jobs may print again


def parse_release(body: dict[str, Any]) -> ReleaseRequest:
    """The release request in a body; 400 for anything malformed."""
    # A job whose last release was interrupted prints again only when the user names it and confirms.
    confirm = body.get("confirm_interrupted") is True and body.get("all") is not True
    if body.get("all") is True:
        wanted = None
    elif isinstance(body.get("jobs"), list) and body["jobs"] and all(isinstance(j, str) for j in body["jobs"]):
        wanted = list(dict.fromkeys(body["jobs"]))
    else:
        raise BadRequest("bad-release", 'name the jobs ({"jobs": [ids]}) or release all ({"all": true})')
    return ReleaseRequest(wanted, confirm)


def login(node: Node, sessions: SessionStore, guard: LoginGuard, body: dict[str, Any]) -> dict[str, Any]:
    printer_id, credentials = parse_credentials(body)
    subjects = [f"terminal:{printer_id}"] + ([f"user:{credentials['user']}"] if "user" in credentials else [])
    guard.check(*subjects)
    try:
        user, offline = node.directory.authenticate(credentials, printer=printer_id, collector=node.id)
    except Unauthorized:
        guard.failed(*subjects)
        raise
    guard.succeeded(*subjects)
    node.directory.printer(printer_id)  # an unknown printer is a 404 before a session exists
    session = sessions.create(user, printer_id, offline=offline)
    return {"session": session.token, "user": user, "printer": printer_id, **list_jobs(node, session)}


def _availability(node: Node, job: dict[str, Any], members: dict[str, Member]) -> dict[str, Any]:
    locations = job.get("locations", [])
    live = [loc for loc in locations if loc == node.id or loc in members]
    entry = {k: job.get(k) for k in ("id", "title", "pages", "size", "copies", "submitted_at", "expires_at",
                                     "state", "state_reason")}
    entry["available"] = bool(live) and job.get("state") in RELEASABLE
    if not live:
        entry["reason"] = "holder-unreachable"
        entry["message"] = MESSAGES["holder-unreachable"]
    elif job.get("state") == JobState.RELEASING:
        entry["reason"] = JobState.RELEASING
        entry["message"] = MESSAGES[JobState.RELEASING]
    elif job.get("state_reason") == INTERRUPTED:
        entry["reason"] = INTERRUPTED
        entry["message"] = MESSAGES[INTERRUPTED]
    return entry


def _jobs_from_peers(node: Node, user: str, members: dict[str, Member], budget: float) -> list[dict[str, Any]]:
    """Degraded mode: ask every live peer (in parallel) and this node's spool for the user's jobs."""
    found = {job["id"]: job for job in copies.held_here(node, user)}
    futures = {node.pool.submit(node.peers.held_for_user, m, user): m for m in members.values()}
    done, _ = concurrent.futures.wait(futures, timeout=budget)
    for future in done:
        try:
            for job in future.result():
                entry = found.setdefault(job["id"], {**job, "locations": []})
                entry["locations"] = sorted(set(entry.get("locations", [])) | set(job.get("locations", [])))
        except (PeerUnreachable, PullprintError):
            continue
    # A stale copy of a job already printed (or claimed offline) must not be offered again.
    taken = site_claims.claimed_or_gone(node, list(found))
    return sorted((j for i, j in found.items() if i not in taken), key=lambda j: j.get("submitted_at", ""))


def list_jobs(node: Node, session: Session, *, everything: bool = False) -> dict[str, Any]:
    """The user's jobs (oldest first, at most `terminal_job_limit` of them unless `everything`) with
    where they can be printed from, and how many there are in all; never waits on a dead node."""
    limit = None if everything else node.config.terminal_job_limit
    members = node.membership.peers()
    warnings: list[str] = []
    try:
        jobs, total = node.analyst.user_jobs(session.user, limit)
    except AnalystUnavailable:
        warnings.append("offline: the central service is unreachable; showing jobs the site's collectors hold")
        jobs = _jobs_from_peers(node, session.user, members, node.config.peer_timeout)
        total = len(jobs)
        jobs = jobs[:limit]
    listed = [_availability(node, job, members) for job in jobs if job.get("state") in OPEN_STATES]
    return {"jobs": listed, "jobs_total": total, "warnings": warnings}
