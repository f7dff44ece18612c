"""Logging that never writes secrets: one JSON object per line, each carrying the request id it serves.

A request id names one piece of work across every hop it makes: the load balancer gives each
request one (or keeps the client's, if it is a well-formed id), the collector keeps it for the
request's log lines and hands it on in ``X-Request-ID`` to every node it calls (peers, the
analyst), which do the same. Background work (a housekeeping cycle) takes an id of its own per
cycle with `request_scope`. ``PULLPRINT_LOG_FORMAT=text`` gives the classic one-line text instead.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import datetime
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

# PINs, badge numbers, tokens and keys must never reach a log line, even through an exception text.
_SECRET_FIELDS = re.compile(
    r'(?i)("?(?:pin|badge|token|password|secret|authorization|session|key)"?\s*[:=]\s*"?'
    r'(?:(?:bearer|basic|negotiate)\s+)?)([^"\s,}&]+)'
)
_SECRET_NAME = re.compile(r"(?i)pin|badge|token|password|secret|authorization|session|key|cookie")

REQUEST_ID_HEADER = "X-Request-ID"
# What an id taken from outside may look like: short, and nothing that could forge a log line.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("pullprint_request_id", default="")

# Who writes the lines: set by `setup`; the service also from PULLPRINT_LOG_SERVICE (gunicorn's own logger).
_identity: dict[str, str] = {"service": os.environ.get("PULLPRINT_LOG_SERVICE", ""), "node": ""}

# The attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Mask secret-looking values in `text`."""
    return _SECRET_FIELDS.sub(r"\1***", text)


def new_request_id() -> str:
    return secrets.token_hex(8)


def well_formed_request_id(value: str | None) -> str | None:
    """`value` if it may serve as a request id taken from a caller, else None."""
    return value if value and _WELL_FORMED_ID.fullmatch(value) else None


def current_request_id() -> str:
    """The id of the work this thread is doing now ("" outside any)."""
    return _request_id.get()


def bind_request_id(value: str) -> contextvars.Token[str]:
    return _request_id.set(value)


def unbind_request_id(token: contextvars.Token[str]) -> None:
    _request_id.reset(token)


@contextlib.contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Run a block as one piece of work with its own id (a new one unless given)."""
    token = _request_id.set(request_id or new_request_id())
    try:
        yield _request_id.get()
    finally:
        _request_id.reset(token)


def outgoing_headers() -> dict[str, str]:
    """The header that carries the current request id to the next hop (none outside a request)."""
    request_id = _request_id.get()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


T = TypeVar("T")


class ContextExecutor(concurrent.futures.ThreadPoolExecutor):
    """A thread pool whose tasks run in the submitter's context, so their log lines and calls keep its request id."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


class RedactingFormatter(logging.Formatter):
    """The text form: masks anything that looks like a secret value, and shows the request id."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "") or _request_id.get()
        return redact(f"{line} [{request_id}]" if request_id else line)


def line_head(logger: str, level: str, created: float, request_id: str = "") -> dict[str, Any]:
    """The fields every JSON line starts with: time, level, service, node, logger, request id."""
    entry: dict[str, Any] = {
        "ts": datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(timespec="milliseconds"),
        "level": level, "service": _identity["service"] or logger.split(".")[0],
    }
    if _identity["node"]:
        entry["node"] = _identity["node"]
    entry["logger"] = logger
    request_id = request_id or _request_id.get()
    if request_id:
        entry["request_id"] = request_id
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, node, logger, request id, message, extra fields, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry = line_head(record.name, record.levelname, record.created, getattr(record, "request_id", ""))
        entry["msg"] = redact(record.getMessage())
        for name, value in vars(record).items():
            if name in _RECORD_FIELDS or name in entry or name == "request_id":
                continue
            entry[name] = "***" if _SECRET_NAME.search(name) else _plain(value)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        elif record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def formatter() -> logging.Formatter:
    """The formatter this process writes with: JSON unless PULLPRINT_LOG_FORMAT=text."""
    if os.environ.get("PULLPRINT_LOG_FORMAT", "json").lower() == "text":
        return RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return JsonFormatter()


def setup(name: str, level: str | None = None, *, service: str | None = None,
          node: str | None = None) -> logging.Logger:
    """Configure the root logger once for a process and return the logger `name`.

    `service` and `node` name the writer on every line (default: the first part of `name`).
    """
    _identity["service"] = service or _identity["service"] or name.removeprefix("pullprint.").split(".")[0]
    if node is not None:
        _identity["node"] = node
    root = logging.getLogger()
    if not any(isinstance(h.formatter, RedactingFormatter | JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter())
        root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("PULLPRINT_LOG_LEVEL", "INFO"))
    return logging.getLogger(name)
