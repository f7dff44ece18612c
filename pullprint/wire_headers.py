"""The submit's headers, without the rest of `pullprint.wire` (re-exported there; import them from there).

The CUPS backend is a fresh process per job and validates what it is about to send exactly as the
collector will read it; `pullprint.wire` needs `dataclasses` and `typing`, which cost that process
more than everything else it imports, so the header rules live here, on the standard library's
`re` and `urllib.parse` alone. `JobSubmission.to_headers` / `from_headers` are these two functions.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from pullprint.errors import BadRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from pullprint.wire import HeaderSource

API = "/api/v1"
H_OWNER = "X-Pullprint-Owner"
# Instead of the owner: the sender's address (mail, uploads); the collector asks the analyst whose it is.
H_OWNER_EMAIL = "X-Pullprint-Owner-Email"
H_TITLE = "X-Pullprint-Title"
H_COPIES = "X-Pullprint-Copies"
H_OPTIONS = "X-Pullprint-Options"
H_ORIGIN = "X-Pullprint-Origin-Host"
H_CUPS_JOB = "X-Pullprint-Cups-Job-Id"
H_IDEMPOTENCY = "Idempotency-Key"
# Mail to a printer's own address (email_gateway): print the job there at once, if that printer allows it.
H_PRINT_AT = "X-Pullprint-Print-At"

MAX_COPIES = 999
MAX_TITLE = 255
# What the analyst's registration takes (analyst/jobs/service.py): a submission refused there after its
# 201 (a journalled one, replayed) would be an acknowledged job the registry drops, so it is refused here.
MAX_CONTENT_TYPE = 127
MAX_OPTIONS = 64
MAX_OPTION_VALUE = 1024
# Control characters (NUL among them, which no PostgreSQL text or JSON column holds) become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# CUPS user names: printable, no whitespace or path tricks; 1..64 characters.
_OWNER = re.compile(r"^[A-Za-z0-9._@\-+$]{1,64}$")
_IDEM = re.compile(r"^[A-Za-z0-9:._\-]{1,128}$")
_OPTION_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,63}$")


def submission_headers(*, owner: str, title: str = "untitled", copies: int = 1,
                       options: Mapping[str, str] | None = None, content_type: str = "application/octet-stream",
                       origin_host: str = "", cups_job_id: str = "", idempotency_key: str = "") -> dict[str, str]:
    """The submit's headers for these fields (what the backend sends)."""
    headers = {
        H_OWNER: owner,
        H_TITLE: quote(title, safe=""),
        H_COPIES: str(copies),
        H_OPTIONS: encode_options(options or {}),
        "Content-Type": content_type,
    }
    if origin_host:
        headers[H_ORIGIN] = origin_host
    if cups_job_id:
        headers[H_CUPS_JOB] = cups_job_id
    if idempotency_key:
        headers[H_IDEMPOTENCY] = idempotency_key
    return headers


def read_submission_headers(headers: HeaderSource | Mapping[str, str]) -> dict[str, Any]:
    """Parse and validate submission headers (the backend's fields) into `JobSubmission`'s fields;
    raises BadRequest with a clear message."""
    owner = (headers.get(H_OWNER) or "").strip()
    if not owner:
        raise BadRequest("missing-owner", f"the {H_OWNER} header is required")
    if not _OWNER.match(owner):
        raise BadRequest("bad-owner", "the owner name has characters a user name cannot have")
    title = _CONTROL.sub(" ", unquote(headers.get(H_TITLE) or "untitled"))[:MAX_TITLE] or "untitled"
    try:
        copies = int(headers.get(H_COPIES) or 1)
    except ValueError:
        raise BadRequest("bad-copies", "copies must be a whole number") from None
    if not 1 <= copies <= MAX_COPIES:
        raise BadRequest("bad-copies", f"copies must be between 1 and {MAX_COPIES}")
    idem = (headers.get(H_IDEMPOTENCY) or "").strip()
    if idem and not _IDEM.match(idem):
        raise BadRequest("bad-idempotency-key", "the Idempotency-Key has unexpected characters")
    content_type = _CONTROL.sub(" ", headers.get("Content-Type") or "").split(";")[0].strip()
    if len(content_type) > MAX_CONTENT_TYPE:
        raise BadRequest("bad-content-type", f"the Content-Type is longer than {MAX_CONTENT_TYPE} characters")
    options = decode_options(headers.get(H_OPTIONS) or "")
    if len(options) > MAX_OPTIONS or any(len(value) > MAX_OPTION_VALUE for value in options.values()):
        raise BadRequest("bad-options", f"at most {MAX_OPTIONS} options of at most {MAX_OPTION_VALUE} "
                         f"characters each")
    return dict(
        owner=owner,
        title=title,
        copies=copies,
        options=options,
        content_type=content_type or "application/octet-stream",
        origin_host=_CONTROL.sub(" ", headers.get(H_ORIGIN) or "")[:255],
        cups_job_id=_CONTROL.sub(" ", headers.get(H_CUPS_JOB) or "")[:32],
        idempotency_key=idem,
    )


def encode_options(options: Mapping[str, str]) -> str:
    """CUPS options as ``a=1 b=two%20words`` (values percent-encoded)."""
    return " ".join(f"{k}={quote(str(v), safe='')}" for k, v in options.items())


def decode_options(text: str) -> dict[str, str]:
    """The inverse of `encode_options`; also reads the raw argv[5] form CUPS gives a backend.

    Options with names CUPS could not have produced are dropped rather than passed on.
    """
    options: dict[str, str] = {}
    for item in text.split():
        name, _, value = item.partition("=")
        name = name.lower()
        if _OPTION_NAME.match(name):
            options[name] = _CONTROL.sub(" ", unquote(value))
    return options
