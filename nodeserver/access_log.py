"""gunicorn's access log without secrets: session tokens in paths, and credentials in headers, redacted.

The terminal API keeps its paths (`/api/v1/sessions/TOKEN`, `.../release`), so the token would
otherwise be written by `--access-logfile -` into every log collector downstream. Both services run
gunicorn with ``--logger-class nodeserver.access_log.RedactingLogger``: every field of the access
line (``%(r)s``, ``%(U)s``, the referer, any header or environ field an operator adds to the format)
goes through `redact` first.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

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
    """gunicorn's Logger, whose access-log fields never hold a session token or a credential."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        fields = super().atoms(resp, req, environ, request_time)
        for name, value in fields.items():
            if name in _SECRET_FIELDS:
                fields[name] = REDACTED
            elif isinstance(value, str) and "sessions" in value.lower():
                fields[name] = redact(value)
        return fields
