"""Typed field readers for JSON bodies: a wrong type or value is a 400 with a clear message, never a 500."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import request

from pullprint.errors import BadRequest

# Ids of jobs, printers and collectors: what fits in a URL path segment and a log line unescaped.
# \Z, not $: `$` also matches before a trailing newline, which would let "c1\n" through.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,63}\Z")
# The same set CUPS user names are checked against in pullprint.wire.
USER_PATTERN = re.compile(r"^[A-Za-z0-9._@\-+$]{1,64}\Z")

_MISSING: Any = object()

# What SQL integer columns hold: BIGINT everywhere; INTEGER (pages, copies, claim tokens) on PostgreSQL.
# A larger number is a 400 here, never an OverflowError or a DataError in the database driver.
SQL_BIGINT = 2**63 - 1
SQL_INTEGER = 2**31 - 1
# The times a request may carry. Anything outside is a mistake, and near datetime's own limits
# (years 1 and 9999) converting to UTC or adding a job's lifetime overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _bad(name: str, what: str) -> BadRequest:
    return BadRequest("bad-field", f"{name}: {what}", field=name)


def _encodable(value: str) -> bool:
    """False for a string no database stores: lone surrogates (JSON "\\ud800"), or a NUL (PostgreSQL's text)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def text(body: Mapping[str, Any], name: str, *, default: str | None = None, required: bool = False,
         max_len: int = 255, pattern: re.Pattern[str] | None = None, allow_empty: bool = True) -> str | None:
    """A string field (None or absent gives `default`)."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest("missing-field", f"{name} is required", field=name)
        return default
    if not isinstance(value, str):
        raise _bad(name, "must be a string")
    if len(value) > max_len:
        raise _bad(name, f"must be at most {max_len} characters")
    if not _encodable(value):
        raise _bad(name, "must be text (no NUL, no lone UTF-16 surrogates)")
    if not value and not allow_empty:
        raise _bad(name, "must not be empty")
    if value and pattern is not None and not pattern.match(value):
        raise _bad(name, "has characters that are not allowed")
    return value


def required_text(body: Mapping[str, Any], name: str, **kwargs: Any) -> str:
    """A string field that must be present and non-empty."""
    value = text(body, name, required=True, allow_empty=False, **kwargs)
    assert value is not None
    return value


def identifier(value: Any, name: str) -> str:
    """An id taken from a URL path or a body (job, printer, collector)."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise _bad(name, "must be 1-64 letters, digits or . _ : @ -")
    return value


# URL path variables of the API's views, and the check each one gets before any view runs.
_PATH_IDS = {"job_id": "job", "collector": "collector", "collector_id": "collector", "printer_id": "printer"}


def path_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Every id in a request's path checked before its view runs (Flask url_value_preprocessor): 400.

    So is the query string: views read filters from it straight into SQL, and a NUL (%00) in a text
    parameter is an error in PostgreSQL's driver, not a row that does not match."""
    for name, text_value in request.args.items(multi=True):
        if "\x00" in text_value:
            raise _bad(name, "must not contain NUL")
    for name, value in (values or {}).items():
        if name in _PATH_IDS:
            identifier(value, _PATH_IDS[name])
        elif name == "name":
            user_name(value)


def user_name(value: Any, name: str = "user") -> str:
    """A user name, checked the way the CUPS backend checks a job owner."""
    if not isinstance(value, str) or not USER_PATTERN.match(value):
        raise _bad(name, "is not a valid user name")
    return value


def integer(body: Mapping[str, Any], name: str, *, default: int | None = None, required: bool = False,
            minimum: int | None = None, maximum: int | None = None) -> int | None:
    """A whole-number field; booleans and floats are refused."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest("missing-field", f"{name} is required", field=name)
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, "must be a whole number")
    maximum = SQL_BIGINT if maximum is None else min(maximum, SQL_BIGINT)
    minimum = -SQL_BIGINT - 1 if minimum is None else max(minimum, -SQL_BIGINT - 1)
    if minimum is not None and value < minimum:
        raise _bad(name, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _bad(name, f"must be at most {maximum}")
    return value


def number(body: Mapping[str, Any], name: str, *, default: float | None = None,
           minimum: float | None = None, maximum: float | None = None) -> float | None:
    """A number field (int or float, finite)."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise _bad(name, "must be a number")
    if minimum is not None and value < minimum:
        raise _bad(name, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _bad(name, f"must be at most {maximum}")
    return float(value)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def boolean(body: Mapping[str, Any], name: str, *, default: bool | None = None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(name, "must be true or false")
    return value


def text_list(body: Mapping[str, Any], name: str, *, default: list[str] | None = None,
              pattern: re.Pattern[str] | None = None, max_items: int = 64, max_len: int = 64) -> list[str] | None:
    """A list of strings, duplicates dropped, order kept."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or len(value) > max_items:
        raise _bad(name, f"must be a list of at most {max_items} strings")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or len(item) > max_len or not _encodable(item):
            raise _bad(name, f"must hold non-empty strings of at most {max_len} characters")
        if pattern is not None and not pattern.match(item):
            raise _bad(name, f"{item!r} has characters that are not allowed")
        if item not in items:
            items.append(item)
    return items


def text_map(body: Mapping[str, Any], name: str, *, max_items: int = 64) -> dict[str, str] | None:
    """An object of string keys to string values (CUPS options)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > max_items:
        raise _bad(name, f"must be an object of at most {max_items} entries")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 64 or len(item) > 1024 or not _encodable(key + item):
            raise _bad(name, "must map short names to string values")
    return dict(value)


def timestamp(body: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO 8601 time; without an offset it is taken as UTC."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(name, "must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _bad(name, "must be an ISO 8601 time") from None
    if not EARLIEST <= parsed < LATEST:
        raise _bad(name, f"must be between {EARLIEST.year} and {LATEST.year}")
    return parsed


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 with its UTC offset, as every answer carries it."""
    return value.astimezone(UTC).isoformat() if value is not None else None
