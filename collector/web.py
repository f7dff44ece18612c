"""What both of the collector's blueprints read from Flask: this app's Node and a request's JSON object body."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from collector.node import Node
from pullprint.errors import BadRequest


def node() -> Node:
    """The Node `create_app` built for this app."""
    built: Node = current_app.extensions["pullprint.node"]
    return built


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise BadRequest("bad-json", "the request body must be a JSON object")
    return body
