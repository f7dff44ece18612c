"""The syntax of the ids that travel between the parts, checked where an id enters before it names a file or URL."""

from __future__ import annotations

import re

# A job id is what the receiving collector generates (`uuid.uuid4().hex`): 32 lower-case hex digits.
# Nothing else is ever a job id, so anything else is refused before it reaches a path, a Redis key
# or an analyst URL (fullmatch: `$` would let a trailing newline through).
_JOB_ID = re.compile(r"[0-9a-f]{32}")
JOB_ID_PATTERN = "^[0-9a-f]{32}$"  # the same, for OpenAPI documents


def valid_job_id(value: object) -> bool:
    """True when `value` is a job id as collectors make them (32 lower-case hex digits)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None
