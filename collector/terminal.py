"""What a release terminal does: log in (badge or user + PIN), list held jobs, release them, log out."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from collector import copies, site_claims
from collector.analyst_client import AnalystUnavailable
from collector.membership import Member
from collector.node import Node
from collector.peers import PeerUnreachable
from collector.release import MESSAGES, ReleaseResult, release_one
from collector.sessions import LoginGuard, Session, SessionStore
from pullprint import keys
from pullprint.errors import BadRequest, Conflict, PullprintError, Unauthorized
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
        entry["message"] = "Every collector holding this job is unreachable right now."
    elif job.get("state") == JobState.RELEASING:
        entry["reason"] = JobState.RELEASING
        entry["message"] = "This job is being released."
    elif job.get("state_reason") == INTERRUPTED:
        entry["reason"] = INTERRUPTED
        entry["message"] = MESSAGES[INTERRUPTED]
    return entry


def _jobs_from_peers(node: Node, user: str, members: dict[str, Member], budget: float) -> list[dict[str, Any]]:
    """Degraded mode: ask every live peer (in parallel) and this node's spool for the user's jobs."""
    found = {job["id"]: job for job in copies.held_here(node, user)}
    futures = {node.pool.submit(node.peers.held_for_user, m.url, user): m for m in members.values()}
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


def _check_printer(node: Node, printer: dict[str, Any]) -> tuple[bool, str | None, list[str], str]:
    from collector.health.cache import check_printer
    from collector.health.policy import MESSAGES as HEALTH_MESSAGES

    verdict = check_printer(node.directory.with_snmp_keys(printer), node.redis, max_age=node.config.health_max_age,
                            timeout=node.config.health_timeout)
    message = HEALTH_MESSAGES.get(verdict.reason or "", verdict.reason or "")
    return verdict.allowed, verdict.reason, list(verdict.warnings), message


def release(node: Node, session: Session, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """Release the named jobs (or all) at the session's printer; per job a ReleaseResult."""
    # A job whose last release was interrupted prints again only when the user names it and confirms.
    confirm = body.get("confirm_interrupted") is True and body.get("all") is not True
    if body.get("all") is True:
        wanted = None
    elif isinstance(body.get("jobs"), list) and body["jobs"] and all(isinstance(j, str) for j in body["jobs"]):
        wanted = list(dict.fromkeys(body["jobs"]))
    else:
        raise BadRequest("bad-release", 'name the jobs ({"jobs": [ids]}) or release all ({"all": true})')

    idem_key = keys.idempotent_release(session.user, idempotency_key) if idempotency_key else None
    if idem_key:
        try:
            previous = node.redis.get(idem_key)
            if not previous:
                # "pending" only while this request waits; after that the answer itself is kept.
                node.redis.set(idem_key, "pending", nx=True, ex=int(node.config.release_wait_seconds) + 10)
        except Exception:  # noqa: BLE001 - without Redis the analyst's claim alone keeps it to one print
            previous, idem_key = None, None
        if previous == "pending":
            raise Conflict("release-in-progress", "this release request is already being carried out")
        if previous:
            return dict(json.loads(previous))

    def remember(answer: dict[str, Any]) -> None:
        if idem_key:
            with contextlib.suppress(Exception):
                node.redis.set(idem_key, json.dumps(answer), ex=600)

    try:
        answer = _release(node, session, wanted, remember, confirm)
    except BaseException:
        if idem_key:
            with contextlib.suppress(Exception):
                node.redis.delete(idem_key)
        raise
    remember(answer)
    return answer


def _release(node: Node, session: Session, wanted: list[str] | None,
             remember: Callable[[dict[str, Any]], None], confirm_interrupted: bool = False) -> dict[str, Any]:
    printer = node.directory.printer(session.printer)
    if wanted is None:
        listing = list_jobs(node, session, everything=True)["jobs"]
        wanted = [j["id"] for j in listing if j.get("available")]
    allowed, reason, warnings, message = _check_printer(node, printer)
    if not allowed:
        # The printer cannot take jobs: nothing is claimed, every job stays held.
        refused = [ReleaseResult(job_id, reason or "printer-error", message, warnings) for job_id in wanted]
        return {"printer": printer["id"], "results": [r.to_json() for r in refused],
                "suggestion": suggest_printer(node, printer)}
    results: dict[str, ReleaseResult] = {}
    order = list(wanted)

    def release_in_order() -> None:
        # One job after the other, in the order the user chose: the printer takes them in that order.
        started = time.monotonic()
        for job_id in order:
            results[job_id] = release_one(node, job_id, session.user, printer, warnings, confirm_interrupted)
        log.info("release of %d job(s) by %s at %s took %.2f s", len(order), session.user, printer["id"],
                 time.monotonic() - started)
        remember(answer_for(results))

    def answer_for(done: dict[str, ReleaseResult]) -> dict[str, Any]:
        queued = {j: ReleaseResult(j, "queued", MESSAGES["queued"], warnings) for j in order if j not in done}
        return {"printer": printer["id"], "results": [(done.get(j) or queued[j]).to_json() for j in order]}

    future = node.release_pool.submit(release_in_order)
    try:
        future.result(timeout=node.config.release_wait_seconds)
    except concurrent.futures.TimeoutError:
        pass  # the rest goes out in the background; the terminal sees them as queued
    return answer_for(dict(results))


def suggest_printer(node: Node, refused: dict[str, Any]) -> dict[str, Any] | None:
    """The nearest other printer that can take jobs: same site, same location first, matching tags."""
    from collector.health.cache import check_printer

    candidates = [p for p in node.directory.printers()
                  if p.get("id") != refused.get("id") and p.get("site") == refused.get("site")
                  and set(refused.get("tags", [])) <= set(p.get("tags", [])) and p.get("in_service", True)]
    candidates.sort(key=lambda p: p.get("location") != refused.get("location"))
    for printer in candidates[:5]:
        verdict = check_printer(printer, node.redis, max_age=node.config.health_max_age,
                                timeout=node.config.health_timeout)
        if verdict.allowed:
            return {"id": printer["id"], "location": printer.get("location", "")}
    return None


__all__ = ["MESSAGES", "login", "list_jobs", "release", "parse_credentials"]
