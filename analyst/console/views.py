"""The console behind HTTP Basic auth (404 while no console password is configured): the page, and taking a
printer out of service or back. Failed logins are throttled per source address; forms carry a CSRF token."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from analyst.console import service
from analyst.printers.service import set_in_service
from analyst.users.service import SqlFailures
from analyst.web import analyst, now
from pullprint.errors import Forbidden, PullprintError, TooManyRequests
from pullprint.throttle import Limit, LoginThrottle, Subject

bp = Blueprint("console", __name__)

# The page has no scripts and loads nothing from elsewhere; it only needs its own inline styles, and
# its forms post to itself only.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                               "form-action 'self'; frame-ancestors 'none'",
                    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer"}


def _limit() -> Limit:
    config = analyst().config
    # reserve: an attempt counts before its password is checked, so parallel guesses cannot burst past it.
    return Limit("console", config.console_free_failures, config.console_window_seconds,
                 cap=config.console_max_delay_seconds, locks=False, reserve=True)


def _challenge() -> Response:
    return Response("authentication required\n", 401, mimetype="text/plain", headers={
        "WWW-Authenticate": 'Basic realm="pullprint console", charset="UTF-8"', **SECURITY_HEADERS})


def _authenticated(stored: str) -> Response | None:
    """None when the request carries the console's password; else the answer (401, or 429 while throttled).

    Only requests that carry Basic credentials count (a browser's first request has none). The count
    is in SQL, per source address; the scrypt runs outside any transaction."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return _challenge()
    state = analyst()
    rows: dict[str, int] = {}
    subjects = [Subject(_limit(), f"console:{request.remote_addr or '-'}")]

    def throttle(session: Session) -> LoginThrottle:
        return LoginThrottle(SqlFailures(session, rows), clock=lambda: state.clock().timestamp())

    try:
        with state.db.session(write=True) as session:
            attempt = throttle(session).admit(subjects)
    except TooManyRequests as exc:
        retry = int(str(exc.details["retry_after"]))
        return Response(f'{{"error": "too-many-attempts", "message": "too many failed console logins; try again '
                        f'in {retry} s", "retry_after": {retry}}}\n', 429, mimetype="application/json",
                        headers={"Retry-After": str(retry), **SECURITY_HEADERS})
    right = service.check_password(auth.username or "", auth.password or "", stored)
    with state.db.session(write=True) as session:
        if right:
            throttle(session).succeeded(attempt)
        else:
            throttle(session).failed(attempt)
    return None if right else _challenge()


def _stored_hash() -> str | None:
    return analyst().config.console_password_hash or None


def _disabled() -> ResponseReturnValue:
    return {"error": "not-found", "message": "the console is disabled (no console_password_hash)"}, 404


@bp.get("/console")
def console() -> ResponseReturnValue:
    stored = _stored_hash()
    if stored is None:
        return _disabled()
    if (refused := _authenticated(stored)) is not None:
        return refused
    state = analyst()
    with state.db.session() as session:
        page = service.snapshot(session, now=now(), dead_after=state.config.collector_dead_after)
    html = render_template("console.html", csrf=service.csrf_token(stored, now().timestamp()), **page)
    return Response(html, mimetype="text/html", headers=SECURITY_HEADERS)


@bp.post("/console/printers/<printer_id>/service")
def printer_service(printer_id: str) -> ResponseReturnValue:
    """The console's form: take a printer out of service (with a reason) or put it back."""
    stored = _stored_hash()
    if stored is None:
        return _disabled()
    if (refused := _authenticated(stored)) is not None:
        return refused
    if not service.same_origin(request.headers, request.host_url) or not service.csrf_valid(
            stored, request.form.get("csrf", ""), now().timestamp()):
        raise Forbidden("csrf-failed", "this form did not come from the console page; reload it and try again")
    in_service = request.form.get("in_service")
    if in_service not in ("true", "false"):
        raise PullprintError("bad-field", "in_service must be true or false", field="in_service")
    reason = (request.form.get("reason") or "")[:255]
    with analyst().db.session(write=True) as session:
        set_in_service(session, printer_id, in_service=in_service == "true", reason=reason, now=now())
    return redirect("/console", code=303)
