"""The console's pages and forms: sign-in with the console's own accounts (throttled per source address),
sessions in signed cookies that expire, a CSRF token on every form, and actions for full accounts only.
404 while no account exists (neither console_password_hash nor `pullprint console-user add`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, g, redirect, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.collectors.calls import shred_copies
from analyst.console import reports, search, service
from analyst.console.service import Operator, SessionPolicy
from analyst.events.service import record_event
from analyst.jobs import service as jobs_service
from analyst.printers.service import set_in_service
from analyst.users.service import SqlFailures
from analyst.web import analyst, now
from nodeserver import peer
from pullprint.errors import BadRequest, Forbidden, NotFound, PullprintError, TooManyRequests
from pullprint.throttle import Limit, LoginThrottle, Subject

logger = logging.getLogger("pullprint.analyst")
bp = Blueprint("console", __name__, static_folder="../static", static_url_path="/console/static")

# The pages run no script and load nothing from elsewhere: their own stylesheet, forms that post
# to themselves, charts as inline SVG.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    # Not no-referrer: under it a browser sends "Origin: null" with the forms' own posts.
                    "Referrer-Policy": "same-origin"}


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
        waiting = service.waiting_by_printer(session)
    lb, problem = service.lb_states(state.config.lb_sockets)
    for collector in page["collectors"]:
        collector["lb"] = lb.get(collector["id"], "")
    return _page("console.html", waiting=waiting, lb_problem=problem, notice=request.args.get("done", "")[:200],
                 **page)


def _done(notice: str, to: str = "/console") -> ResponseReturnValue:
    """Back to the page, with a word of what was done (never anything secret: it is in the address)."""
    path, _, query = to.partition("?")
    kept = [(k, value) for k, value in parse_qsl(query) if k != "done"]
    return redirect(f"{path}?{urlencode([*kept, ('done', notice)])}", code=303)


@bp.post("/console/collectors/<collector_id>/<action>")
@signed_in(action=True)
def collector_state(collector_id: str, action: str) -> ResponseReturnValue:
    """Drain a collector at the load balancer(s) (no new requests; those in flight finish), or ready it."""
    if action not in ("drain", "ready"):
        raise NotFound("not-found", "a collector can be drained or readied")
    collector_id = v.identifier(collector_id, "collector")
    state = analyst()
    lb, _ = service.lb_states(state.config.lb_sockets)
    if collector_id not in lb:
        raise NotFound("no-such-collector", f"no load balancer knows collector {collector_id}")
    service.set_lb_state(state.config.lb_sockets, collector_id, drain=action == "drain")
    with state.db.session(write=True) as session:
        record_event(session, f"collector-{action}", now=now(), collector=collector_id,
                     detail={"by": operator().name})
    logger.info("console: %s %s collector %s", operator().name, "drained" if action == "drain" else "readied",
                collector_id)
    return _done(f"collector {collector_id}: {'drained' if action == 'drain' else 'ready'}")


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
    return _done(f"printer {printer_id}: {'back in service' if in_service == 'true' else 'out of service'}")


@bp.post("/console/jobs/<job_id>/delete")
@signed_in(action=True)
def delete_job(job_id: str) -> ResponseReturnValue:
    """Delete a held (or failed) job as its owner can at a station: recorded, then every collector holding
    a copy is asked to crypto-shred it now; one that cannot be reached does when it next squares its
    spool with the analyst (collector.copies.reconcile)."""
    reason = (request.form.get("reason") or "").strip()[:500]
    with analyst().db.session(write=True) as session:
        job = jobs_service.delete_job(session, job_id, reason=f"deleted in the console by {operator().name}"
                                      + (f": {reason}" if reason else ""), now=now())
        holders = [loc.collector_id for loc in job.locations]
    with analyst().db.session() as session:
        shredded = shred_copies(session, analyst().config.tls(), job_id, holders)
    done = [h for h, ok in shredded.items() if ok]
    later = [h for h, ok in shredded.items() if not ok]
    message = f"job {job_id}: deleted" + (f"; its copies shredded at {', '.join(done)}" if done else "")
    if later:
        message += f"; not reached now, so shredded at their next reconcile: {', '.join(later)}"
    return _done(message, to=_back("/console/jobs"))


def _back(default: str) -> str:
    """Where a form came from, if it is a console page (never elsewhere)."""
    target = request.form.get("back", "")
    return target if target.startswith("/console") and "//" not in target and "\\" not in target else default



# --- jobs and events, searched ---------------------------------------------------------------------------------

def _search_page(template: str, what: str) -> Response:
    filters = search.parse_filters(request.args)
    with analyst().db.session() as session:
        rows, total = (search.search_jobs if what == "jobs" else search.search_events)(session, filters)
    pages = max(1, -(-total // search.PER_PAGE))
    return _page(template, rows=rows, total=total, filters=filters, pages=pages, urlencode=urlencode,
                 notice=request.args.get("done", "")[:200], here=request.full_path.rstrip("?"))


@bp.get("/console/jobs")
@signed_in()
def jobs_page() -> ResponseReturnValue:
    return _search_page("console_jobs.html", "jobs")


@bp.get("/console/events")
@signed_in()
def events_page() -> ResponseReturnValue:
    return _search_page("console_events.html", "events")


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv", headers={
        **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}-{now():%Y%m%dT%H%M%SZ}.csv"'})


@bp.get("/console/jobs.csv")
@signed_in()
def jobs_csv() -> ResponseReturnValue:
    filters = search.parse_filters(request.args)
    with analyst().db.session() as session:
        return _csv(search.jobs_csv(session, filters), "pullprint-jobs")


@bp.get("/console/events.csv")
@signed_in()
def events_csv() -> ResponseReturnValue:
    filters = search.parse_filters(request.args)
    with analyst().db.session() as session:
        return _csv(search.events_csv(session, filters), "pullprint-events")


# --- users and printers ------------------------------------------------------------------------------------------

@bp.get("/console/manage")
@signed_in()
def manage_page() -> ResponseReturnValue:
    from analyst.printers.service import list_printers, printer_to_dict
    from analyst.users.service import list_users, user_to_dict

    with analyst().db.session() as session:
        users = [user_to_dict(u) for u in list_users(session)]
        printers = [printer_to_dict(p) for p in list_printers(session)]
    return _page("console_manage.html", users=users, printers=printers, notice=request.args.get("done", "")[:200])


def _form_text(name: str) -> str | None:
    """A text field of the form: absent or blank is None (keep what is stored)."""
    value = (request.form.get(name) or "").strip()
    return value or None


@bp.post("/console/users")
@signed_in(action=True)
def user_form() -> ResponseReturnValue:
    """Add a user or change one: email, PIN (blank keeps it), allowed or denied (the API's rules and checks)."""
    from analyst.users import service as users_service

    name = v.user_name(v.required_text({"name": _form_text("name")}, "name", max_len=64), "name")
    changes: dict[str, Any] = {}
    if (email := _form_text("email")) is not None:
        changes["email"] = v.text({"email": email}, "email", max_len=users_service.MAX_EMAIL)
    if (pin := request.form.get("pin") or "") != "":
        changes["pin"] = v.text({"pin": pin}, "pin", max_len=users_service.MAX_PIN)
    allowed = request.form.get("allowed", "keep")
    if allowed not in ("keep", "allow", "deny"):
        raise BadRequest("bad-field", "allowed must be keep, allow or deny", field="allowed")
    if allowed != "keep":
        changes["allowed"] = allowed == "allow"
    state = analyst()
    with state.db.session(write=True) as session:
        _user, created = users_service.upsert_user(session, name, pepper=state.pepper, now=now(),
                                                   policy=state.email_policy, **changes)
        record_event(session, "console-user", now=now(), user=name,
                     detail={"by": operator().name, "created": created, "changed": sorted(changes)})
    return _done(f"user {name}: {'added' if created else 'changed'}", to="/console/manage")


PRINTER_FORM_FIELDS = ("uri", "site", "location", "building", "floor", "room", "snmp_host")


@bp.post("/console/printers")
@signed_in(action=True)
def printer_form() -> ResponseReturnValue:
    """Add a printer or change one (blank fields keep what is stored), with the API's checks."""
    from analyst.printers import service as printers_service

    body: dict[str, Any] = {"id": _form_text("id")}
    body.update({name: value for name in PRINTER_FORM_FIELDS if (value := _form_text(name)) is not None})
    if (tags := _form_text("tags")) is not None:
        body["tags"] = [tag.strip() for tag in tags.split(",") if tag.strip()]
    fields = printers_service.parse_printer(body, partial=True)
    with analyst().db.session(write=True) as session:
        printer, created = printers_service.upsert_printer(session, fields, now=now())
        record_event(session, "console-printer", now=now(), printer=printer.id,
                     detail={"by": operator().name, "created": created, "changed": sorted(set(fields) - {"id"})})
    return _done(f"printer {fields['id']}: {'added' if created else 'changed'}", to="/console/manage")


# --- errors: a page for a person, JSON for a program -----------------------------------------------------------

@bp.errorhandler(PullprintError)
def console_error(exc: PullprintError) -> ResponseReturnValue:
    headers = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else {}
    # A browser asks for text/html first; a program (or */*) gets JSON.
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        page = _page("console_error.html", exc.status, error=exc)
        page.headers.update(headers)
        return page
    return exc.to_json(), exc.status, headers


# --- reports ----------------------------------------------------------------------------------------------------

@bp.get("/console/reports")
@signed_in()
def reports_page() -> ResponseReturnValue:
    period = reports.parse_period(request.args.get("from", "").strip(), request.args.get("to", "").strip(),
                                  today=now().date())
    with analyst().db.session() as session:
        charts = reports.report(session, period)
    return _page("console_reports.html", period=period, charts=charts)
