"""A Flask app for the request-id test: logs a line per request and answers the id it works under."""

from __future__ import annotations

import logging

from flask import Flask, jsonify

from nodeserver import request_id
from pullprint import log

log.setup("pullprint.testapp", service="testapp", node="n1")
app = Flask(__name__)
request_id.init_app(app)


@app.get("/api/v1/sessions/<token>")
def session(token: str):  # noqa: ANN201
    logging.getLogger("testapp").info("serving a session")
    return jsonify({"request_id": log.current_request_id()})
