"""A release terminal's login (badge or user + PIN), its list of the user's jobs, its release requests parsed."""

from __future__ import annotations

import concurrent.futures
import hmac
import logging
from dataclasses import dataclass
from typing import Any

from collector import copies, site_claims
from collector.analyst_client import AnalystUnavailable
from collector.membership import Member
from collector.messages import MESSAGES
from collector.node import Node
from collector.peers import PeerUnreachable
from collector.sessions import Session, SessionStore
from collector.throttle import limits_of
from nodeserver.client import deadline, time_left
from pullprint.errors import BadRequest, Forbidden, NotFound, PullprintError, Unauthorized, Unavailable
from pullprint.ids import valid_job_id
from pullprint.states import INTERRUPTED, OPEN_STATES, RELEASABLE, JobState
from pullprint.throttle import LoginThrottle
from pullprint.wire import is_color, is_duplex

log = logging.getLogger(__name__)

_BADGE_MAX = 128
_PIN_MAX = 64
_USER_MAX = 64
_ENROLLMENT_CODE_MAX = 64

NOT_ENROLLED = ("terminal-not-enrolled", "this release station is not enrolled: open its enrollment link "
                "(an administrator makes one with `pullprint terminal link`)")
UNKNOWN_TERMINAL = ("terminal-unknown", "this release station's credential is unknown or revoked: enrol it again")


@dataclass(frozen=True)
class Caller:
    """Who is on the other end of a terminal call: an enrolled terminal, or an unenrolled client."""

    address: str             # the client's address (nodeserver.peer.client_address)
    terminal: str = ""       # the enrolled terminal's id; "" for an unenrolled client
    printer: str = ""        # the printer the terminal is enrolled for

    @property
    def binding(self) -> str:
        """What a session opened by this caller is bound to (collector/sessions.py Session.bound_to)."""
        return f"t:{self.terminal}" if self.terminal else f"a:{self.address}"


def identify(node: Node, throttle: LoginThrottle, authorization: str | None, address: str) -> Caller:
    """The caller of a terminal call from its ``Authorization: Bearer`` credential (or its absence).

    An unknown or revoked credential is a 401 (and a failure counted against the address: a station
    trying tokens is guessing); no credential is a 401 too unless the site allows unenrolled clients.
    """
    if authorization:
        terminal = node.directory.terminal(authorization)
        if terminal is None:
            # Not (yet) in this collector's directory: perhaps enrolled a moment ago. Asking the
            # analyst is for callers the throttle lets through; a miss counts as a failure.
            attempt = throttle.admit(limits_of(node.config).subjects(terminal=None, address=address, user=None))
            try:
                terminal = node.directory.terminal(authorization, ask=True)
            except Unavailable:
                throttle.abandoned(attempt)  # not checked: the analyst away
                raise
            if terminal is None:
                throttle.failed(attempt)
                raise Unauthorized(*UNKNOWN_TERMINAL)
        return Caller(address, terminal["id"], terminal["printer"])
    if not node.config.allow_unenrolled_terminals:
        raise Unauthorized(*NOT_ENROLLED)
    return Caller(address)


def parse_credentials(body: dict[str, Any], caller: Caller) -> tuple[str, dict[str, str]]:
    """(printer, credentials) from a login body; 400 for anything malformed.

    An enrolled terminal's printer is the one it is enrolled for: a body naming another is a 403
    (a station set up for the wrong printer must say so, not release somewhere else).
    """
    printer = body.get("printer")
    if printer is not None and (not isinstance(printer, str) or not printer.strip()):
        raise BadRequest("missing-printer", "printer must be the id of the printer the terminal stands at")
    if caller.terminal:
        if printer is not None and printer.strip() != caller.printer:
            raise Forbidden("wrong-printer", f"this release station is enrolled for printer {caller.printer}",
                            printer=caller.printer)
        printer = caller.printer
    elif printer is None:
        raise BadRequest("missing-printer", "the terminal must say which printer it stands at")
    if "badge" in body:
        badge = body["badge"]
        if not isinstance(badge, str) or not badge.strip() or len(badge) > _BADGE_MAX:
            raise BadRequest("bad-badge", "the badge must be a non-empty string")
        return printer.strip(), {"badge": badge.strip()}
    if "code" in body:  # a guest's release code, as the mail gave it (digits; spaces and dashes ignored)
        code = body["code"]
        if not isinstance(code, str) or len(code) > 32 or not any(c.isdigit() for c in code):
            raise BadRequest("bad-code", "the release code is the number the mail gave")
        return printer.strip(), {"code": code.strip()}
    user, pin = body.get("user"), body.get("pin")
    if (not isinstance(user, str) or not isinstance(pin, str) or not user.strip() or not pin
            or len(user) > _USER_MAX or len(pin) > _PIN_MAX):
        raise BadRequest("missing-credentials", "log in with a badge, a release code, or a user name and a PIN")
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


# Of a login's budget, the share its calls to other nodes may take in all: the rest is for this node's
# own work after the last of them (an offline PIN check, the session, the answer).
LOGIN_CALLS_SHARE = 0.8


def login(node: Node, sessions: SessionStore, throttle: LoginThrottle, caller: Caller,
          body: dict[str, Any]) -> dict[str, Any]:
    """Log a user in at the caller's printer: throttled per terminal, address and user name (all
    before any credential is looked at), the same 401 for every miss, a session bound to the caller.

    One deadline covers the whole login (`login_budget_seconds`): its calls to the analyst and the
    peers share it, each cut to what is left, so a slow analyst makes the login fall back to the
    synced directory and the collectors' own lists in time, instead of adding one timeout per call."""
    with deadline(node.config.login_budget_seconds * LOGIN_CALLS_SHARE):
        return _login(node, sessions, throttle, caller, body)


def _login(node: Node, sessions: SessionStore, throttle: LoginThrottle, caller: Caller,
           body: dict[str, Any]) -> dict[str, Any]:
    printer_id, credentials = parse_credentials(body, caller)
    attempt = throttle.admit(limits_of(node.config).subjects(
        terminal=caller.terminal or None, address=caller.address, user=credentials.get("user")))
    try:
        # The analyst lists the user's jobs in the same answer: one call to it per login.
        who = node.directory.authenticate(credentials, printer=printer_id, collector=node.id,
                                          terminal=caller.terminal, source=caller.address,
                                          jobs_limit=node.config.terminal_job_limit)
    except Unauthorized:
        throttle.failed(attempt)
        raise
    except BaseException:
        throttle.abandoned(attempt)  # not a wrong credential: the analyst refused, or could not say
        raise
    throttle.succeeded(attempt)
    node.directory.require_printer(printer_id)  # an unknown printer is a 404 before a session exists
    session = sessions.create(who.user, printer_id, bound_to=caller.binding, offline=who.offline, only=who.job)
    return {"session": session.token, "user": who.user, "printer": printer_id,
            **list_jobs(node, session, analyst_listing=who.jobs)}


def session_for(sessions: SessionStore, caller: Caller, token: str) -> Session:
    """The live session `token` names, if the caller is the terminal that opened it (else 403)."""
    session = sessions.get(token)
    if not hmac.compare_digest(session.bound_to.encode(), caller.binding.encode()):
        raise Forbidden("wrong-terminal", "this session belongs to another release station")
    return session


def enroll(node: Node, throttle: LoginThrottle, address: str, body: dict[str, Any]) -> dict[str, Any]:
    """Redeem a one-time enrollment code at the analyst: ``{"terminal": {...}, "token"}``, the token shown
    only in this answer. A refused code counts as a failure of the address, like a wrong badge."""
    code = body.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > _ENROLLMENT_CODE_MAX:
        raise BadRequest("bad-code", "send the enrollment code: {\"code\": \"...\"}")
    attempt = throttle.admit(limits_of(node.config).subjects(terminal=None, address=address, user=None))
    try:
        answer = node.analyst.redeem_enrollment(code.strip())
    except Forbidden:
        throttle.failed(attempt)
        raise
    except AnalystUnavailable:
        throttle.abandoned(attempt)
        raise Unavailable("analyst-unreachable", "enrolling a release station needs the central service, "
                          "which cannot be reached now; try again in a moment") from None
    log.info("terminal %s enrolled for printer %s from %s", answer["terminal"]["id"],
             answer["terminal"]["printer"], address)
    return {"terminal": answer["terminal"], "token": answer["token"]}


def _availability(node: Node, job: dict[str, Any], members: dict[str, Member]) -> dict[str, Any]:
    locations = job.get("locations", [])
    live = [loc for loc in locations if loc == node.id or loc in members]
    entry = {k: job.get(k) for k in ("id", "title", "pages", "size", "copies", "submitted_at", "expires_at",
                                     "state", "state_reason")}
    options = job.get("options") or {}
    entry.update(duplex=is_duplex(options), color=is_color(options), media=options.get("media", ""))
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


def list_jobs(node: Node, session: Session, *, everything: bool = False,
              analyst_listing: tuple[list[dict[str, Any]], int] | None = None) -> dict[str, Any]:
    """The user's jobs (oldest first, at most `terminal_job_limit` of them unless `everything`) with
    where they can be printed from, and how many there are in all; never waits on a dead node.
    `analyst_listing`: the jobs and total the analyst already gave (at login): it is not asked again."""
    limit = None if everything else node.config.terminal_job_limit
    members = node.membership.peers()
    warnings: list[str] = []
    try:
        jobs, total = analyst_listing or node.analyst.user_jobs(session.user, limit)
    except AnalystUnavailable:
        warnings.append("offline: the central service is unreachable; showing jobs the site's collectors hold")
        jobs = _jobs_from_peers(node, session.user, members, time_left(node.config.peer_timeout))
        total = len(jobs)
        jobs = jobs[:limit]
    if session.only:  # a release code's session: its one job
        jobs = [job for job in jobs if job.get("id") == session.only]
        total = len(jobs)
    listed = [_availability(node, job, members) for job in jobs if job.get("state") in OPEN_STATES]
    # idle_seconds: how long the session lives without a call (the station's countdown).
    return {"jobs": listed, "jobs_total": total, "warnings": warnings,
            "idle_seconds": node.config.session_idle_seconds}


def delete_job(node: Node, session: Session, job_id: str) -> dict[str, Any]:
    """Delete one of the session user's held (or failed) jobs: the analyst's record first, then every
    copy is crypto-shredded (its key destroyed, collector/spool.py), as when a job expires.

    Only the analyst can say that nobody is printing the job at this moment, so deleting needs it
    (503 while it is away). Another user's job is answered as no job at all."""
    if not valid_job_id(job_id):
        raise NotFound("not-found", "no such job")
    try:
        job = node.analyst.delete_job(job_id, user=session.user, reason="deleted at the release station")
    except AnalystUnavailable:
        raise Unavailable("analyst-unreachable", "deleting a job needs the central service, which cannot be "
                          "reached now; the job is still held") from None
    except PullprintError as exc:
        if exc.status in (403, 404):
            raise NotFound("not-found", "no such job") from None
        raise
    copies.discard_copies(node, job_id, job.get("locations", []))
    log.info("job %s deleted by its owner at printer %s", job_id, session.printer)
    return {"id": job_id, "state": job.get("state", JobState.DELETED)}


def printer_status(node: Node, caller: Caller, printer_id: str) -> dict[str, Any]:
    """The printer's state as the station shows it above the list: the cached SNMP reading, judged
    as a release would be (ok, warning, error, unreachable, out-of-service, unmonitored)."""
    from collector.health.cache import check_printer

    if caller.terminal and printer_id != caller.printer:
        raise Forbidden("wrong-printer", f"this release station is enrolled for printer {caller.printer}",
                        printer=caller.printer)
    printer = node.directory.printer(printer_id)
    verdict = check_printer(node.directory.with_snmp_keys(printer), node.redis, max_age=node.config.health_max_age,
                            timeout=node.config.health_timeout, seals=node.seals)
    return {"printer": printer_id, "location": printer.get("location", ""), **verdict.to_json()}
