"""What the collector's blueprints read from Flask: this app's Node, its login throttle, a request's JSON body."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from collector.node import Node
from collector.throttle import site_throttle
from pullprint.errors import BadRequest, TooLarge
from pullprint.throttle import LoginThrottle, MemoryFailures


def node() -> Node:
    """The Node `create_app` built for this app."""
    built: Node = current_app.extensions["pullprint.node"]
    return built


def login_throttle() -> LoginThrottle:
    """The site's login throttle: counts in Redis, and in this worker's memory beside it (what limits
    while Redis is away; it lives as long as this worker's app)."""
    memory = current_app.extensions.setdefault("pullprint.login_memory", MemoryFailures())
    return site_throttle(node().redis, memory)


def json_body() -> dict[str, Any]:
    """The request's JSON object, read up to `max_json_bytes`: larger is a 413, malformed a 400.

    The app has no global MAX_CONTENT_LENGTH (documents stream to the spool under their own limit),
    so every JSON body is bounded here, chunked ones included: never more than the limit is read.
    """
    limit = node().config.max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        _drain(limit)
        raise _too_large(limit)
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        _drain(limit)
        raise _too_large(limit)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("bad-json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("bad-json", "the request body must be a JSON object")
    return body


def _drain(limit: int) -> None:
    """Read (and drop) what remains of a refused body, up to a bound, so that the client gets to read
    the 413: closing on unread data makes the kernel reset the connection under the answer."""
    budget = 16 * limit
    while budget > 0 and (chunk := request.stream.read(min(budget, 65536))):
        budget -= len(chunk)


def _too_large(limit: int) -> TooLarge:
    return TooLarge("body-too-large", f"a JSON request body may be at most {limit} bytes", limit=limit)
