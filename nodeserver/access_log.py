"""gunicorn's logs as JSON lines, without secrets: session tokens in paths, and credentials in headers, redacted.

Each access line is a JSON object (`pullprint.log`'s shape) with the request's id, method, redacted
path, status, bytes, duration and the caller's address; an operator's own ``--access-logformat``
is kept as given (redacted the same way). gunicorn's own messages (worker boots, timeouts) are
written by the same JSON formatter as the service's.

The terminal API keeps its paths (`/api/v1/sessions/TOKEN`, `.../release`), so the token would
otherwise be written by `--access-logfile -` into every log collector downstream. Both services run
gunicorn with ``--logger-class nodeserver.access_log.RedactingLogger``: every field of the access
line (``%(r)s``, ``%(U)s``, the referer, any header or environ field an operator adds to the format)
goes through `redact` first.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from typing import Any

from gunicorn.config import AccessLogFormat
from gunicorn.glogging import Logger

from nodeserver.request_id import ENVIRON_KEY
from pullprint import log

REDACTED = "<redacted>"
# The token is the path segment after /sessions/ (raw or decoded path, any number of slashes).
_SESSION_PATH = re.compile(r"(/api/v1/+sessions/+)[^/?#\s\"]+", re.IGNORECASE)
# Header and environ fields that carry credentials whole (Bearer tokens, Basic passwords, cookies).
_SECRET_FIELDS = frozenset({"{authorization}i", "{cookie}i", "{x-csrf-token}i", "{set-cookie}o",
                            "{http_authorization}e", "{http_cookie}e", "{http_x_csrf_token}e"})


def redact(text: str) -> str:
    """`text` with every session token in an API path replaced by <redacted>."""
    return _SESSION_PATH.sub(rf"\g<1>{REDACTED}", text)


class RedactingLogger(Logger):
    """gunicorn's Logger, writing JSON lines whose fields never hold a session token or a credential."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(log.formatter())
        # JSON access lines unless the operator chose a format (or text logs).
        self.json_access = (cfg.access_log_format == AccessLogFormat.default
                            and isinstance(log.formatter(), log.JsonFormatter))

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.json_access:
            super().access(resp, req, environ, request_time)  # the operator's own format, redacted by atoms()
            return
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(access_line(resp, environ, request_time))
        except Exception:
            self.error(traceback.format_exc())


    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        fields = super().atoms(resp, req, environ, request_time)
        for name, value in fields.items():
            if name in _SECRET_FIELDS:
                fields[name] = REDACTED
            elif isinstance(value, str) and "sessions" in value.lower():
                fields[name] = redact(value)
        return fields


def access_line(resp: Any, environ: dict[str, Any], request_time: Any) -> str:
    """One request as a JSON line, built straight from what gunicorn hands over (a line per request:
    this is on every request's path, so none of `atoms`' copying of every header and environ key)."""
    status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else str(resp.status)
    entry = log.line_head("access", "INFO", time.time(), environ.get(ENVIRON_KEY) or "")
    entry.update(remote=environ.get("REMOTE_ADDR", "-"), method=environ.get("REQUEST_METHOD", "-"),
                 path=redact(environ.get("PATH_INFO", "")), status=status, bytes=getattr(resp, "sent", None),
                 duration_ms=round(request_time.total_seconds() * 1000, 3),
                 user_agent=log.redact(environ.get("HTTP_USER_AGENT", "-")))
    return json.dumps(entry, ensure_ascii=False)
