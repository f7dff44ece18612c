"""The console's pages and forms: sign-in with the console's own accounts (throttled per source address),
sessions in signed cookies that expire, a CSRF token on every form, and actions for full accounts only.
404 while no account exists (neither console_password_hash nor `pullprint console-user add`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from analyst.console import service
from analyst.console.service import Operator, SessionPolicy
from analyst.printers.service import set_in_service
from analyst.users.service import SqlFailures
from analyst.web import analyst, now
from nodeserver import peer
from pullprint.errors import BadRequest, Forbidden, PullprintError, TooManyRequests
from pullprint.throttle import Limit, LoginThrottle, Subject

bp = Blueprint("console", __name__, static_folder="../static", static_url_path="/console/static")

# The pages run no script and load nothing from elsewhere: their own stylesheet, forms that post
# to themselves, charts as inline SVG.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer"}


def _policy() -> SessionPolicy:
    config = analyst().config
    return SessionPolicy(key=service.session_key(analyst().pepper),
                         idle=timedelta(minutes=config.console_idle_minutes),
                         lifetime=timedelta(hours=config.console_session_hours))


def _secure() -> bool:
    return not analyst().config.insecure_plain_http


def _cookie_name() -> str:
    # __Host-: the browser keeps it only when Secure, for this host alone, on path /.
    return "__Host-pullprint-console" if _secure() else "pullprint-console"


def _builtin_hash() -> str:
    return analyst().config.console_password_hash


def _enabled(session: Session) -> bool:
    return bool(_builtin_hash()) or service.has_accounts(session)


def _page(template: str, status: int = 200, **context: Any) -> Response:
    html = render_template(template, operator=g.get("operator"), csrf=g.get("csrf", ""), **context)
    return Response(html, status, mimetype="text/html", headers=SECURITY_HEADERS)


def _disabled() -> Response:
    return Response('{"error": "not-found", "message": "the console is disabled (no console account)"}\n', 404,
                    mimetype="application/json", headers=SECURITY_HEADERS)


def signed_in(*, action: bool = False, full: bool = True) -> Callable[[Callable[..., ResponseReturnValue]],
                                                                      Callable[..., ResponseReturnValue]]:
    """A console page (a GET) or action (a POST: CSRF-checked; with `full`, for full accounts only)."""
    def decorate(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            state, policy = analyst(), _policy()
            with state.db.session(write=True) as session:
                if not _enabled(session):
                    return _disabled()
                found = service.resume_session(session, request.cookies.get(_cookie_name(), ""), policy=policy,
                                               builtin_hash=_builtin_hash(), now=now())
            if found is None:
                if action:
                    raise PullprintError("unauthenticated", "sign in to the console first", status=401)
                return redirect("/console/login", code=303)
            g.operator, digest = found
            g.csrf = service.form_token(policy.key, digest, now().timestamp())
            if action:
                if not service.same_origin(request.headers, request.host_url) or not service.form_token_valid(
                        policy.key, digest, request.form.get("csrf", ""), now().timestamp(),
                        policy.lifetime.total_seconds()):
                    raise Forbidden("csrf-failed", "this form did not come from the console page; reload it and "
                                    "try again")
                if full and not g.operator.may_act:
                    raise Forbidden("read-only", f"console account {g.operator.name} is read-only")
            return view(*args, **kwargs)
        return wrapper
    return decorate


def operator() -> Operator:
    operator: Operator = g.operator
    return operator


# --- signing in and out ----------------------------------------------------------------------------------

def _limit() -> Limit:
    config = analyst().config
    # reserve: an attempt counts before its password is checked, so parallel guesses cannot burst past it.
    return Limit("console", config.console_free_failures, config.console_window_seconds,
                 cap=config.console_max_delay_seconds, locks=False, reserve=True)


def _login_page(status: int = 200, message: str = "", name: str = "",
                headers: dict[str, str] | None = None) -> Response:
    token = service.form_token(_policy().key, "login", now().timestamp())
    page = _page("console_login.html", status, login_csrf=token, message=message, name=name)
    page.headers.update(headers or {})
    return page


@bp.get("/console/login")
def login_form() -> ResponseReturnValue:
    with analyst().db.session() as session:
        if not _enabled(session):
            return _disabled()
    return _login_page()


@bp.post("/console/login")
def login() -> ResponseReturnValue:
    """Check a name and password (one scrypt either way), throttled per source address, counted in SQL."""
    state, policy = analyst(), _policy()
    name, password = request.form.get("name", "")[:64], request.form.get("password", "")
    if not service.same_origin(request.headers, request.host_url) or not service.form_token_valid(
            policy.key, "login", request.form.get("csrf", ""), now().timestamp(), service.LOGIN_FORM_MAX_AGE):
        return _login_page(403, "This sign-in form is stale or came from elsewhere; try again.", name)
    rows: dict[str, int] = {}
    subjects = [Subject(_limit(), f"console:{peer.client_address()}")]

    def throttle(session: Session) -> LoginThrottle:
        return LoginThrottle(SqlFailures(session, rows), clock=lambda: state.clock().timestamp())

    try:
        with state.db.session(write=True) as session:
            if not _enabled(session):
                return _disabled()
            attempt = throttle(session).admit(subjects)
            stored, _role = service.lookup_credentials(session, name, _builtin_hash())
    except TooManyRequests as exc:
        retry = int(str(exc.details["retry_after"]))
        return _login_page(429, f"Too many failed sign-ins from this address; try again in {retry} s.", name,
                           headers={"Retry-After": str(retry)})
    right = service.verify(password, stored)
    with state.db.session(write=True) as session:
        if right and stored is not None:
            throttle(session).succeeded(attempt)
            cookie = service.start_session(session, name, stored, policy=policy, now=now())
        else:
            throttle(session).failed(attempt)
    if not right:
        return _login_page(401, "Wrong name or password.", name)
    answer = redirect("/console", code=303)
    answer.set_cookie(_cookie_name(), cookie, max_age=int(policy.lifetime.total_seconds()), path="/",
                      secure=_secure(), httponly=True, samesite="Strict")
    return answer


@bp.post("/console/logout")
@signed_in(action=True, full=False)
def logout() -> ResponseReturnValue:
    policy = _policy()
    with analyst().db.session(write=True) as session:
        service.end_session(session, request.cookies.get(_cookie_name(), ""), policy.key)
    answer = redirect("/console/login", code=303)
    answer.delete_cookie(_cookie_name(), path="/", secure=_secure(), httponly=True, samesite="Strict")
    return answer


# --- the fleet ------------------------------------------------------------------------------------------------

@bp.get("/console")
@signed_in()
def console() -> ResponseReturnValue:
    state = analyst()
    with state.db.session() as session:
        page = service.snapshot(session, now=now(), dead_after=state.config.collector_dead_after)
    return _page("console.html", **page)


@bp.post("/console/printers/<printer_id>/service")
@signed_in(action=True)
def printer_service(printer_id: str) -> ResponseReturnValue:
    """Take a printer out of service (with a reason) or put it back."""
    in_service = request.form.get("in_service")
    if in_service not in ("true", "false"):
        raise BadRequest("bad-field", "in_service must be true or false", field="in_service")
    reason = (request.form.get("reason") or "")[:255]
    with analyst().db.session(write=True) as session:
        set_in_service(session, printer_id, in_service=in_service == "true", reason=reason, now=now())
    return redirect("/console", code=303)

