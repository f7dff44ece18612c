"""The analyst's Flask application factory."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, g, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from analyst import metrics
from analyst import validate as v
from analyst.config import AnalystConfig
from analyst.console.service import looks_like_hash
from analyst.db import Database, DatabaseBusy, head_revision, upgrade
from analyst.web import EXTENSION, Analyst, analyst, transaction
from nodeserver import peer, request_id
from pullprint import config as pullprint_config
from pullprint import log
from pullprint.errors import PullprintError

logger = logging.getLogger("pullprint.analyst")

# Bodies are metadata, never documents; anything larger is a mistake or an attack.
MAX_BODY = 1024 * 1024


def create_app(config: AnalystConfig | None = None) -> Flask:
    """Build the analyst app; reads the configuration now (not at import) and opens no connection yet."""
    config = config or pullprint_config.load(AnalystConfig, "analyst")
    log.setup("pullprint.analyst", config.log_level)
    if not config.badge_pepper:
        raise PullprintError("bad-config", "analyst.badge_pepper is not set "
                             "(set PULLPRINT_ANALYST_BADGE_PEPPER_FILE to a file holding it)", status=500)
    if config.console_password_hash and not looks_like_hash(config.console_password_hash):
        raise PullprintError("bad-config", "analyst.console_password_hash is not a scrypt$… hash "
                             "(make one with pullprint.credentials.pin_hash)", status=500)
    if config.auto_migrate:
        upgrade(config.db_url, config.db_password)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config[peer.INSECURE] = config.insecure_plain_http
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = Analyst(config=config, db=Database(config.db_url, config.db_password))
    request_id.init_app(app)  # first: every other hook's log lines carry the id

    from analyst.accounting.views import bp as accounting_bp
    from analyst.collectors.views import bp as collectors_bp
    from analyst.console.views import bp as console_bp
    from analyst.events.views import bp as events_bp
    from analyst.jobs.views import bp as jobs_bp
    from analyst.printers.views import bp as printers_bp
    from analyst.submitters.views import bp as submitters_bp  # issue 9: each submitting host's credential
    from analyst.terminals.views import bp as terminals_bp  # issue 9: enrolled release terminals
    from analyst.users.views import bp as users_bp

    for blueprint in (jobs_bp, users_bp, printers_bp, collectors_bp, events_bp, accounting_bp, console_bp,
                      submitters_bp, terminals_bp):
        app.register_blueprint(blueprint)
    app.url_value_preprocessor(v.path_ids)  # every id in a path is checked (400) before a view sees it
    _add_health(app)
    _add_auth_and_errors(app)
    return app


def _add_health(app: Flask) -> None:
    head = head_revision()

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        db = analyst().db
        try:
            db.ping()
            revision = db.schema_revision()
        except Exception as exc:  # any driver error means the same thing here: no database
            logger.warning("readyz: database unreachable: %s", exc)
            return {"error": "database-unavailable", "message": f"the database does not answer: "
                    f"{type(exc).__name__}"}, 503
        if revision != head:
            return {"error": "schema-outdated", "message": f"database schema is at {revision}, "
                    f"this analyst needs {head} (run pullprint analyst to upgrade)"}, 503
        return {"status": "ready"}

    @app.get("/openapi.json")
    def openapi() -> ResponseReturnValue:
        """The OpenAPI 3.1 document (public, like the collector's: outside /api/, no certificate needed)."""
        from analyst.openapi import document

        return document()

    @app.get("/pki/crl")
    def crl() -> ResponseReturnValue:
        """The cluster CA's revocation list, for collectors to refresh theirs (signed: safe to hand anyone)."""
        path = analyst().config.crl_file
        if not path:
            return {"error": "no-crl", "message": "this analyst has no CRL (analyst.crl_file)"}, 404
        return Response(Path(path).read_bytes(), mimetype="application/pkix-crl")

    @app.get("/metrics")
    def metrics_page() -> ResponseReturnValue:
        from analyst.events.service import count_by_kind
        from analyst.jobs.service import count_by_state

        with transaction() as session:
            text = metrics.render(count_by_state(session), count_by_kind(session))
        return Response(text, mimetype="text/plain; version=0.0.4")


# Who may call what, by the role in the caller's certificate (nodeserver/peer.py). Collectors make
# the calls of their own work; everything else under /api/ (users, printers, terminals, submitting
# hosts, events, reports) is administration, for `admin` certificates only. The console has its
# own password; GET /pki/crl is public (the CA signed it).
COLLECTOR_CALLS = frozenset({
    "jobs.register", "jobs.get", "jobs.search", "jobs.lookup", "jobs.user_jobs", "jobs.claim", "jobs.renew",
    "jobs.finish", "jobs.delete", "jobs.add_location", "jobs.remove_location", "jobs.expire",
    "users.auth", "users.resolve_email", "collectors.heartbeat", "collectors.list_collectors", "collectors.sync",
    "printers.get", "printers.report_status",
    # A kiosk page's one-time enrollment code, passed on by the collector it reached; a terminal's or
    # submitting host's credential a collector has not synced yet.
    "terminals.redeem", "terminals.lookup", "submitters.lookup",
})


def roles_for(endpoint: str | None) -> tuple[str, ...]:
    """The certificate roles that may call `endpoint` (a Flask endpoint name under /api/)."""
    return ("collector", "admin") if endpoint in COLLECTOR_CALLS else ("admin",)


def _add_auth_and_errors(app: Flask) -> None:
    @app.before_request
    def require_role() -> ResponseReturnValue | None:
        if request.path.startswith("/api/"):
            identity = peer.require(*roles_for(request.endpoint))
            g.caller = identity
        return None

    metrics.init_app(app)

    @app.errorhandler(PullprintError)
    def pullprint_error(exc: PullprintError) -> ResponseReturnValue:
        if "retry_after" in exc.details:  # 429 / 423: clients and proxies read the header
            return exc.to_json(), exc.status, {"Retry-After": str(exc.details["retry_after"])}
        return exc.to_json(), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "-")
        return {"error": code, "message": exc.description or exc.name}, exc.code or 500

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError) -> ResponseReturnValue:
        # A uniqueness race the service did not foresee: the other writer won, the client may retry.
        logger.warning("integrity error on %s %s: %s", request.method, request.path, exc.orig)
        return {"error": "conflict", "message": "a concurrent change conflicts with this one; retry"}, 409

    @app.errorhandler(OperationalError)
    def database_error(exc: OperationalError) -> ResponseReturnValue:
        logger.error("database error on %s %s: %s", request.method, request.path, exc.orig)
        return {"error": "database-unavailable", "message": "the database cannot be reached now"}, 503

    @app.errorhandler(DatabaseBusy)
    def database_busy(exc: DatabaseBusy) -> ResponseReturnValue:
        logger.error("database busy on %s %s: %s", request.method, request.path, exc)
        return {"error": "database-busy", "message": "the database is busy with another change; retry"}, 503

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> ResponseReturnValue:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return {"error": "internal-error", "message": "the analyst failed to handle this request"}, 500
