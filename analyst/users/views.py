"""HTTP views for users and authentication."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.jobs import service as jobs
from analyst.terminals.service import check_terminal_id
from analyst.users import service
from analyst.web import analyst, json_body, now, transaction
from pullprint.errors import Forbidden, Unauthorized
from pullprint.throttle import Verdict
from pullprint.throttle import refusal as refusal_of

bp = Blueprint("users", __name__, url_prefix="/api/v1")

BAD_CREDENTIALS = "badge or PIN not recognised"


def _optional(body: dict[str, object], name: str, max_len: int) -> str | None:
    # Absent: keep what is stored; null or "": remove it.
    if name not in body:
        return service.KEEP
    return v.text(body, name, max_len=max_len) or None


@bp.post("/users")
def upsert() -> ResponseReturnValue:
    body = json_body()
    name = v.user_name(v.required_text(body, "name", max_len=64), "name")
    with transaction() as session:
        user, created = service.upsert_user(
            session, name, pepper=analyst().pepper, now=now(), badge=_optional(body, "badge", service.MAX_BADGE),
            pin=_optional(body, "pin", service.MAX_PIN), email=_optional(body, "email", service.MAX_EMAIL),
            allowed=v.boolean(body, "allowed") if "allowed" in body else service.KEEP,
            policy=analyst().email_policy)
        return {"user": service.user_to_dict(user)}, 201 if created else 200


@bp.post("/identities/email")
def resolve_email() -> ResponseReturnValue:
    """The user a sender's address belongs to (mail and upload intake, through a collector): 403 with the
    reason (not-serviced, unknown-user, user-denied) when it is not served; a new user when the policy
    auto-provisions."""
    body = json_body()
    email = v.required_text(body, "email", max_len=service.MAX_EMAIL)
    with transaction() as session:
        sender = service.resolve_email(session, email, policy=analyst().email_policy, now=now())
        return {"user": sender.user, "email": sender.email, "provisioned": sender.provisioned, "guest": sender.guest}


@bp.get("/users")
def list_users() -> ResponseReturnValue:
    with transaction() as session:
        return {"users": [service.user_to_dict(user) for user in service.list_users(session)]}


@bp.delete("/users/<name>")
def remove(name: str) -> ResponseReturnValue:
    with transaction() as session:
        service.remove_user(session, name)
    return {"deleted": name}


@bp.post("/auth")
def auth() -> ResponseReturnValue:
    body = json_body()
    badge = v.text(body, "badge", max_len=service.MAX_BADGE)
    user = v.text(body, "user", max_len=64)
    pin = v.text(body, "pin", max_len=service.MAX_PIN)
    code = v.text(body, "code", max_len=32)
    printer = v.text(body, "printer", max_len=64)
    collector = v.text(body, "collector", max_len=64)
    # Where the attempt came from, as the collector saw it: the enrolled terminal and the address.
    terminal = v.text(body, "terminal", max_len=62) or None
    if terminal is not None:
        check_terminal_id(terminal)
    source = v.text(body, "source", max_len=64) or None
    # A terminal's login lists the user's jobs at once: asked for, the answer carries them (as
    # GET /users/<name>/jobs?limit= would; null: all), and the login costs the collector one call.
    list_jobs = "jobs_limit" in body
    jobs_limit = v.integer(body, "jobs_limit", minimum=1, maximum=10_000)
    state = analyst()
    # Not in a request-wide transaction: the service opens short ones around its PIN check.
    result = service.authenticate(state.db, pepper=state.pepper, clock=state.clock, limits=state.login_limits,
                                  badge=badge, user=user, pin=pin, code=code, printer=printer, collector=collector,
                                  terminal=terminal, source=source)
    if result.refused:
        raise Forbidden("terminal-revoked", "this release station's enrollment was revoked")
    if result.denied:
        raise Forbidden("user-denied", "your account may not print at the moment; your jobs stay held. Ask IT")
    if result.retry_after is not None:
        raise refusal_of(Verdict(result.retry_after, result.locked))
    if result.user is None:
        raise Unauthorized("bad-credentials", BAD_CREDENTIALS)
    answer: dict[str, object] = {"user": result.user, **({"job": result.job} if result.job else {})}
    if list_jobs:
        with state.db.session() as session:  # a read: never waits for (or holds up) a writer
            held, total = jobs.user_jobs(session, result.user, jobs_limit)
            answer.update(jobs=held, total=total)
    return answer
