"""GET /console behind HTTP Basic auth; 404 while no console password is configured."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue

from analyst.console import service
from analyst.web import analyst, now

bp = Blueprint("console", __name__)

# The page has no scripts and loads nothing from elsewhere; it only needs its own inline styles.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer"}


@bp.get("/console")
def console() -> ResponseReturnValue:
    state = analyst()
    stored = state.config.console_password_hash
    if not stored:
        return {"error": "not-found", "message": "the console is disabled (no console_password_hash)"}, 404
    auth = request.authorization
    if auth is None or auth.type != "basic" or not service.check_password(auth.username or "", auth.password or "",
                                                                          stored):
        return Response("authentication required\n", 401, mimetype="text/plain", headers={
            "WWW-Authenticate": 'Basic realm="pullprint console", charset="UTF-8"', **SECURITY_HEADERS})
    with state.db.session() as session:
        page = service.snapshot(session, now=now(), dead_after=state.config.collector_dead_after)
    html = render_template("console.html", **page)
    return Response(html, mimetype="text/html", headers=SECURITY_HEADERS)
