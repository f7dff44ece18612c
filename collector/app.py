"""The collector's Flask app factory: nothing is read or connected at import time."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from collector.config import CollectorConfig
from collector.node import Node, build_node
from nodeserver import peer, request_id
from pullprint import config as pp_config
from pullprint.errors import PullprintError
from pullprint.log import setup

log = logging.getLogger(__name__)


def create_app(config: CollectorConfig | None = None, node: Node | None = None, **overrides: Any) -> Flask:
    setup("collector")
    config = config or pp_config.load(CollectorConfig, "collector", overrides=overrides)
    setup("collector", node=config.id)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # the spool enforces the job size limit while streaming
    app.config[peer.INSECURE] = config.insecure_plain_http
    app.extensions["pullprint.node"] = node or build_node(config)

    from collector import api, internal_api, metrics, station, uploads

    request_id.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(internal_api.bp)
    app.register_blueprint(uploads.bp)
    station.init_app(app, language=config.station_language)
    metrics.init_app(app, config.id, config.spool_dir)

    @app.errorhandler(PullprintError)
    def pullprint_error(exc: PullprintError) -> tuple[Response, int]:
        response = jsonify(exc.to_json())
        if "retry_after" in exc.details:  # 429 / 423: clients and proxies read the header
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        return response, exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").lower().replace(" ", "-")
        return jsonify({"error": code, "message": exc.description}), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unexpected error")
        return jsonify({"error": "internal", "message": "the collector hit an unexpected error"}), 500

    return app
