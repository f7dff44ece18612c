"""The analyst's OpenAPI 3.1 document, served at /openapi.json; who may call what is analyst.app's role table."""

from __future__ import annotations

import functools
import re
from typing import Any

from analyst import validate as v
from analyst.printers import service as printers
from analyst.submitters.service import HOST_PATTERN
from analyst.terminals.service import TERMINAL_ID
from analyst.users.service import MAX_BADGE, MAX_PIN
from pullprint.documents import LANGUAGES
from pullprint.states import FINISH_STATES, JobState
from pullprint.wire import MAX_COPIES, MAX_TITLE

Schema = dict[str, Any]


def _pattern(regex: re.Pattern[str]) -> str:
    # Python's \Z (end of text, no trailing newline) is JSON Schema's (ECMA 262) $.
    return regex.pattern.replace(r"\Z", "$")


ID = {"type": "string", "pattern": _pattern(v.ID_PATTERN), "maxLength": 64,
      "description": "1-64 letters, digits or . _ : @ - (a job, printer or collector id)"}
USER = {"type": "string", "pattern": _pattern(v.USER_PATTERN), "maxLength": 64,
        "description": "a user name as CUPS gives it: 1-64 letters, digits or . _ @ - + $"}
HOST = {"type": "string", "pattern": _pattern(HOST_PATTERN), "maxLength": 255}
TERMINAL = {"type": "string", "pattern": _pattern(TERMINAL_ID), "maxLength": 62}
TIME = {"type": "string", "format": "date-time",
        "description": f"ISO 8601 (without an offset: UTC), from {v.EARLIEST.year} to before {v.LATEST.year}"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _or_null(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _text(max_len: int, **extra: Any) -> Schema:
    """A request's optional string field: null means absent (analyst.validate.text)."""
    return _or_null({"type": "string", "maxLength": max_len, **extra})


def _int(**bounds: int) -> Schema:
    return _or_null({"type": "integer", **bounds})


def _bool() -> Schema:
    return _or_null({"type": "boolean"})


def _closed(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """An object the analyst answers with: every field always there (but `optional`), nothing else."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": [name for name in properties if name not in optional]}


def _body(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """A request body: other fields are ignored."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


# --- what the analyst answers ---------------------------------------------------------------------------------

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_ANSWER_TIME = {"type": "string", "format": "date-time"}

ERROR = {"type": "object", "required": ["error", "message"], "properties": {
    "error": {"type": "string", "description": "a stable code: bad-field, missing-field, malformed-json, not-found, "
                                               "unauthenticated, forbidden, conflict, …"},
    "message": {"type": "string", "description": "for a person"},
    "field": {"type": "string", "description": "the request field at fault (bad-field, missing-field, weak-pin)"},
    "retry_after": {"type": "integer", "description": "seconds (429, 423)"},
    "state": {"type": "string", "description": "the job's state (409 from claim, renew, finish, delete)"},
    "token": {"type": "integer", "description": "the job's current claim token (409 stale-token)"},
    "limit": {"type": "string", "description": "the quota setting reached (409 quota-exceeded)"}}}

CLAIM = _closed({"by": _NULLABLE_STRING, "printer": _NULLABLE_STRING, "token": {"type": "integer"},
                 "lease_expires_at": _NULLABLE_TIME})
JOB = _closed({
    "id": _STRING, "owner": _STRING, "title": _STRING, "size": {"type": "integer", "minimum": 0}, "sha256": _STRING,
    "pages": {"type": ["integer", "null"]}, "copies": {"type": "integer", "minimum": 1},
    "options": {"type": "object", "additionalProperties": _STRING}, "content_type": _STRING,
    "origin_host": _STRING, "cups_job_id": _STRING, "idempotency_key": _STRING, "site": _STRING,
    "state": {"type": "string", "enum": [s.value for s in JobState]}, "state_reason": _STRING,
    "submitted_at": _ANSWER_TIME, "expires_at": _ANSWER_TIME, "received_by": _STRING,
    "locations": {"type": "array", "items": _STRING, "description": "collectors holding a copy"},
    "claim": {"anyOf": [_ref("Claim"), {"type": "null"}], "description": "while the job is releasing"}})
PRINTER_STATUS = {"type": "object", "description": "the last SNMP reading a collector reported", "properties": {
    "state": {"type": "string", "enum": list(printers.STATES)}, "reason": _STRING, "warnings": _STRINGS,
    "errors": _STRINGS, "polled_at": _NULLABLE_TIME, "collector": _STRING, "uptime": {"type": ["number", "null"]},
    "since": _NULLABLE_TIME, "supplies": {"type": "array", "items": {"$ref": "#/components/schemas/Supply"}}}}
SUPPLY = {"type": "object", "description": "a marker supply (toner, drum, …) as SNMP reported it", "properties": {
    "description": _STRING, "percent": {"type": ["number", "null"], "description": "0-100, null when unknown"}},
    "required": ["description", "percent"], "additionalProperties": False}
PRINTER = _closed({
    "id": _STRING, "uri": _STRING, "snmp_host": _STRING, "snmp_port": {"type": "integer"},
    "snmp_version": {"type": "string", "enum": list(printers.SNMP_VERSIONS)}, "snmp_community": _STRING,
    "site": _STRING, "location": _STRING, "tags": _STRINGS, "in_service": {"type": "boolean"},
    "unreachable_policy": {"type": "string", "enum": list(printers.UNREACHABLE_POLICIES)},
    "building": _STRING, "floor": _STRING, "room": _STRING, "capabilities": _STRINGS, "service_reason": _STRING,
    "snmp_v3_user": _STRING, "snmp_v3_auth_protocol": _STRING,
    "snmp_v3_auth_key": {"type": "string", "description": f"{printers.MASK!r} when set (in clear in GET /sync only)"},
    "snmp_v3_priv_protocol": _STRING,
    "snmp_v3_priv_key": {"type": "string", "description": f"{printers.MASK!r} when set (in clear in GET /sync only)"},
    "status": {"anyOf": [_ref("PrinterStatus"), {"type": "null"}]},
    "document_filter": {"type": "string", "enum": list(printers.DOCUMENT_FILTERS)},
    "languages": {"type": "array", "items": {"type": "string", "enum": list(LANGUAGES)}},
    "direct_mail": {"type": "boolean", "description": "mail to the printer's own address prints at once"}})
USER_RECORD = _closed({"name": _STRING, "has_badge": {"type": "boolean"}, "has_pin": {"type": "boolean"},
                       "email": _STRING, "allowed": {"type": "boolean"}})
COLLECTOR = _closed({"id": _STRING, "url": _STRING, "site": _STRING, "last_seen": _ANSWER_TIME,
                     "alive": {"type": "boolean", "description": "a heartbeat within collector_dead_after"},
                     "version": {**_STRING, "description": "its pullprint version, as its last heartbeat said"},
                     "spool_jobs": {"type": ["integer", "null"], "description": "job copies in its spool"},
                     "journal_entries": {"type": ["integer", "null"],
                                         "description": "changes journalled for the analyst, not yet replayed"}})
EVENT = _closed({"id": {"type": "integer"}, "at": _ANSWER_TIME, "kind": _STRING, "user": _NULLABLE_STRING,
                 "job": _NULLABLE_STRING, "printer": _NULLABLE_STRING, "collector": _NULLABLE_STRING,
                 "detail": {"type": "object"}})
SUBMITTER = _closed({"host": _STRING, "description": _STRING, "created_at": _ANSWER_TIME,
                     "revoked_at": _NULLABLE_TIME, "active": {"type": "boolean"}})
TERMINAL_RECORD = _closed({
    "id": _STRING, "printer": _STRING, "description": _STRING, "created_at": _ANSWER_TIME,
    "enrolled_at": _NULLABLE_TIME, "revoked_at": _NULLABLE_TIME, "active": {"type": "boolean"},
    "enrollment_pending": {"type": "boolean"}, "enrollment_expires_at": _NULLABLE_TIME})
_COUNT = {"type": "integer", "minimum": 0}
REPORT_ROW = _closed({"key": _STRING, "jobs": _COUNT, "pages": _COUNT, "unknown_page_jobs": _COUNT,
                      "copies": _COUNT, "impressions": _COUNT, "sheets": _COUNT, "duplex_jobs": _COUNT,
                      "color_jobs": _COUNT})
SYNC = _closed({
    "users": {"type": "array", "items": _closed({"name": _STRING, "badge_hash": _NULLABLE_STRING,
                                                 "pin_hash": _NULLABLE_STRING, "allowed": {"type": "boolean"}})},
    "submitters": {"type": "array", "items": _closed({"host": _STRING, "token_hash": _STRING})},
    "terminals": {"type": "array", "items": _closed({"id": _STRING, "printer": _STRING, "token_hash": _STRING})},
    "printers": {"type": "array", "items": _ref("Printer"), "description": "SNMPv3 keys in clear"}})

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR, "Job": JOB, "Claim": CLAIM, "Printer": PRINTER, "PrinterStatus": PRINTER_STATUS, "Supply": SUPPLY,
    "User": USER_RECORD, "Collector": COLLECTOR, "Event": EVENT, "Submitter": SUBMITTER,
    "Terminal": TERMINAL_RECORD, "ReportRow": REPORT_ROW}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _one(name: str, schema: str, description: str = "OK") -> Schema:
    return _json(_closed({name: _ref(schema)}), description)


def _list(name: str, schema: str) -> Schema:
    return _json(_closed({name: {"type": "array", "items": _ref(schema)}}))


def _error(description: str, headers: dict[str, Any] | None = None) -> Schema:
    answer = {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}
    if headers:
        answer["headers"] = headers
    return answer


_JOB = _one("job", "Job")
_RETRY_AFTER = {"Retry-After": {"required": True, "schema": {"type": "integer"}, "description": "seconds"}}
_NOT_FOUND_ROUTE = "; or a path id with a '/' in it (no such route)"

# --- request bodies ---------------------------------------------------------------------------------------------

_REPLAY = {"offline": _or_null({"type": "boolean", "description": "a call a collector replays from its journal"}),
           "at": _or_null({**TIME, "description": "when the collector acted (offline replays; default now)"})}
JOB_REGISTRATION = _body({
    "id": _text(64, pattern="^$|" + _pattern(v.ID_PATTERN), description="absent or empty: the analyst makes one"),
    "owner": {**USER, "minLength": 1}, "title": _text(MAX_TITLE), "size": _int(minimum=0, maximum=v.SQL_BIGINT),
    "sha256": _text(64), "pages": _int(minimum=0, maximum=v.SQL_INTEGER), "copies": _int(minimum=1, maximum=MAX_COPIES),
    "options": _or_null({"type": "object", "maxProperties": 64, "propertyNames": {"maxLength": 64},
                         "additionalProperties": {"type": "string", "maxLength": 1024},
                         "description": "the CUPS options"}),
    "content_type": _text(127), "origin_host": _text(255), "cups_job_id": _text(32), "idempotency_key": _text(128),
    "site": _text(64), "submitted_at": _or_null(TIME), "expires_at": _or_null(TIME), "received_by": _text(64),
    "locations": _or_null({"type": "array", "maxItems": 64, "items": ID,
                           "description": "collectors holding a copy (duplicates dropped)"}),
    "release_code_hash": _text(64, pattern="^$|^[0-9a-f]{64}$",
                               description="a guest's job: the HMAC of its release code (POST /auth {code})"),
    **_REPLAY}, required=("owner",))
_LEASE = _or_null({"type": "number", "minimum": 0.001,
                   "description": "default default_lease_seconds (120), at most max_lease_seconds (3600)"})
CLAIM_REQUEST = _body({"user": USER, "collector": ID, "printer": ID, "lease_seconds": _LEASE,
                       "confirm_interrupted": {"type": "boolean", "description": "the user confirmed a release "
                                                                                 "of an interrupted job"},
                       **_REPLAY}, required=("user", "collector", "printer"))
_TOKEN = {"type": "integer", "minimum": 0, "maximum": v.SQL_INTEGER, "description": "the claim's fencing token"}
RENEW_REQUEST = _body({"token": _TOKEN, "lease_seconds": _LEASE}, required=("token",))
FINISH_REQUEST = _body({
    "token": _TOKEN, "state": {"type": "string", "enum": list(FINISH_STATES)},
    "reason": _text(1000), "printer": _or_null({"anyOf": [ID, {"const": ""}]}),
    "collector": _or_null({"anyOf": [ID, {"const": ""}]}), "pages": _int(minimum=0, maximum=v.SQL_INTEGER),
    "copies": _int(minimum=1, maximum=MAX_COPIES),
    "duplex": _bool(), "color": _bool(), **_REPLAY}, required=("token", "state"))
DELETE_JOB_REQUEST = _body({"user": _or_null({"anyOf": [USER, {"const": ""}]}), "reason": _text(1000)})
LOOKUP_REQUEST = _body({"ids": {"type": "array", "maxItems": 1000, "items": _STRING}}, required=("ids",))
USER_REQUEST = _body({
    "name": {**USER, "minLength": 1},
    "badge": _text(MAX_BADGE, description="absent: keep; null or \"\": remove"),
    "pin": _text(MAX_PIN, description="absent: keep; null or \"\": remove. 6 characters or more, not a trivial "
                                      "PIN (400 weak-pin)"),
    "email": _text(254, description="absent: keep; null or \"\": remove. Unique, lower-cased, in a serviced "
                                    "domain when analyst.serviced_domains lists any"),
    "allowed": _bool()}, required=("name",))
EMAIL_REQUEST = _body({"email": _text(254, minLength=1)}, required=("email",))
AUTH_REQUEST = _body({
    "badge": _text(MAX_BADGE), "user": _text(64), "pin": _text(MAX_PIN),
    "code": _text(32, description="a guest job's release code (it releases that job alone)"),
    "printer": _text(64), "collector": _text(64),
    "terminal": _or_null({**TERMINAL, "description": "the enrolled terminal the login came through"}),
    "source": _text(64, description="the client address the collector saw"),
    "jobs_limit": {**_int(minimum=1, maximum=10_000), "description": (
        "list the user's open jobs in the answer too, at most this many (null: all), as "
        "GET /api/v1/users/{name}/jobs?limit= does; absent: no listing")}},
) | {"description": "a badge, or a user and a PIN (else 400 missing-field)"}
_TAGS = _or_null({"type": "array", "maxItems": 64,
                  "items": {"type": "string", "pattern": printers._TAG.pattern, "maxLength": 32}})
_SNMP_KEY = _text(255, description=f"8 characters or more; \"\" removes it, {printers.MASK!r} keeps it")
PRINTER_REQUEST = _body({
    "id": ID, "uri": _text(1024, pattern=printers._URI.pattern, description="required for a new printer"),
    "snmp_host": _text(255), "snmp_port": _int(minimum=1, maximum=65535),
    "snmp_version": _or_null({"type": "string", "enum": list(printers.SNMP_VERSIONS)}),
    "snmp_community": _text(255), "snmp_v3_user": _text(64),
    "snmp_v3_auth_protocol": _text(8, description=f"one of {', '.join(printers.SNMP_V3_AUTH_PROTOCOLS)} (any case)"),
    "snmp_v3_auth_key": _SNMP_KEY,
    "snmp_v3_priv_protocol": _text(8, description=f"one of {', '.join(printers.SNMP_V3_PRIV_PROTOCOLS)} (any case)"),
    "snmp_v3_priv_key": _SNMP_KEY,
    "site": _text(64, pattern="^$|" + _pattern(v.ID_PATTERN)), "location": _text(255), "building": _text(64),
    "floor": _text(32), "room": _text(64), "tags": _TAGS, "capabilities": _TAGS, "in_service": _bool(),
    "service_reason": _text(255),
    "unreachable_policy": _or_null({"type": "string", "enum": list(printers.UNREACHABLE_POLICIES)}),
    "document_filter": _or_null({"type": "string", "enum": list(printers.DOCUMENT_FILTERS)}),
    "languages": _or_null({"type": "array", "minItems": 1, "maxItems": 4,
                           "items": {"type": "string", "enum": list(LANGUAGES)},
                           "description": "what the printer takes; a job in another is converted at release"}),
    "direct_mail": _or_null({"type": "boolean", "description": "mail to this printer's own address prints at once, "
                                                               "without a badge (default false)"})},
    required=("id",))
_READINGS = _or_null({"type": "array", "maxItems": 64, "items": {"type": "string", "minLength": 1, "maxLength": 128}})
STATUS_REQUEST = _body({
    "state": {"type": "string", "enum": list(printers.STATES)}, "reason": _text(255), "warnings": _READINGS,
    "errors": _READINGS, "polled_at": _or_null(TIME), "collector": _or_null({"anyOf": [ID, {"const": ""}]}),
    "uptime": _or_null({"type": "number", "minimum": 0}),
    "supplies": _or_null({"type": "array", "maxItems": 32, "items": _body({
        "description": _text(128), "percent": _or_null({"type": "number", "minimum": 0, "maximum": 100})},
        required=("description",))})}, required=("state",))
SERVICE_REQUEST = _body({"in_service": {"type": "boolean"}, "reason": _text(255)}, required=("in_service",))
HEARTBEAT_REQUEST = _body({"url": _text(1024), "site": _text(64, pattern="^$|" + _pattern(v.ID_PATTERN)),
                           "version": _text(64), "spool_jobs": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                           "journal_entries": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}})
# A collector asks after a credential its directory does not hold yet (terminals and submitting hosts alike).
LOOKUP_REQUEST = _body({"token_hash": {"type": "string", "minLength": 1, "maxLength": 64,
                                       "description": "the SHA-256 of the bearer token, hex"}},
                       required=("token_hash",))
SUBMITTER_REQUEST = _body({"host": {**HOST, "description": "the submitting host's name"},
                           "description": _text(255)}, required=("host",))
TERMINAL_REQUEST = _body({"printer": ID, "description": _text(255),
                          "id": _or_null({"anyOf": [TERMINAL, {"const": ""}], "description": "default t-<12 hex>"})},
                         required=("printer",))
ENROLLMENT_REQUEST = _body({"valid_minutes": _or_null({"type": "number", "minimum": 1, "maximum": 24 * 60,
                                                       "description": "default 15"})})
REDEEM_REQUEST = _body({"code": {"type": "string", "minLength": 1, "maxLength": 64}}, required=("code",))


def _request(schema: Schema, *, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    parameter = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


_JOB_ID = _path("job_id", ID)
_PRINTER_ID = _path("printer_id", ID)
_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 10_000})


# --- operations -------------------------------------------------------------------------------------------------

# (method, path, Flask endpoint, summary, parameters, request body, answers). The endpoint is the
# operationId, and what analyst.app.roles_for says of it is the operation's security.
Operation = tuple[str, str, str, str, list[Schema], Schema | None, dict[str, Schema]]

OPERATIONS: list[Operation] = [
    ("post", "/api/v1/jobs", "jobs.register", "Register a job a collector took in (or find the one it repeats)", [],
     _request(JOB_REGISTRATION), {
         "201": _json(_closed({"job": _ref("Job"), "created": {"const": True}}), "registered"),
         "200": _json(_closed({"job": _ref("Job"), "created": {"const": False}}),
                      "the id, or the owner's idempotency_key, is known: that job"),
         "409": _error("id-conflict: the id is another user's job; quota-exceeded (`limit` names it): the owner "
                       "holds max_held_jobs_per_user jobs or max_held_bytes_per_user bytes (never for an offline "
                       "replay)")}),
    ("get", "/api/v1/jobs", "jobs.search", "Jobs matching every filter given, oldest first", [
        _query("state", {"type": "string", "enum": ["", *[s.value for s in JobState]]}),
        _query("reason", _STRING, "state_reason, e.g. interrupted"), _query("location", _STRING, "a collector id"),
        _query("owner", _STRING), {**_LIMIT, "description": "default 1000"},
        _query("after", _STRING, "the `next` of the page before: this page starts after its last job")], None,
     {"200": _json(_closed({"jobs": {"type": "array", "items": _ref("Job")},
                            "next": {**_STRING, "description": "on a full page: the cursor of the page after it"}},
                           optional=("next",))),
      "400": _error("bad-field: an unknown state, a limit out of range, or an after this listing did not give")}),
    ("post", "/api/v1/jobs/lookup", "jobs.lookup", "The jobs among `ids` the analyst knows, in any state", [],
     _request(LOOKUP_REQUEST), {"200": _json(_closed({"jobs": {"type": "object", "additionalProperties": _ref("Job"),
                                                                "description": "by id"}}))}),
    ("get", "/api/v1/jobs/{job_id}", "jobs.get", "One job", [_JOB_ID], None,
     {"200": _JOB, "404": _error("no such job" + _NOT_FOUND_ROUTE)}),
    ("delete", "/api/v1/jobs/{job_id}", "jobs.delete", "Delete a held or failed job (its copies are then shredded)",
     [_JOB_ID], _request(DELETE_JOB_REQUEST, required=False), {
         "200": _JOB, "403": _error("not-owner: `user` is not the job's owner; or the caller's role may not"),
         "404": _error("no such job" + _NOT_FOUND_ROUTE), "409": _error("not-deletable (`state`)")}),
    ("post", "/api/v1/jobs/{job_id}/claim", "jobs.claim",
     "Claim a job for release (held or failed -> releasing, compare-and-set); answers the fencing token",
     [_JOB_ID], _request(CLAIM_REQUEST), {
         "200": _json(_closed({"job": _ref("Job"), "token": {"type": "integer"}})),
         "403": _error("not-owner; or the caller's role may not"), "404": _error("no such job" + _NOT_FOUND_ROUTE),
         "409": _error("not-releasable (`state`), or interrupted: its last release was interrupted and needs "
                       "confirm_interrupted")}),
    ("post", "/api/v1/jobs/{job_id}/renew", "jobs.renew", "Extend the lease of the current claim before sending",
     [_JOB_ID], _request(RENEW_REQUEST), {
         "200": _JOB, "404": _error("no such job" + _NOT_FOUND_ROUTE),
         "409": _error("stale-token (`state`, `token`): someone claimed it since; do not send")}),
    ("post", "/api/v1/jobs/{job_id}/finish", "jobs.finish",
     "End a release under its claim: printed (accounted), or back to held or failed with a reason",
     [_JOB_ID], _request(FINISH_REQUEST), {
         "200": _JOB, "404": _error("no such job" + _NOT_FOUND_ROUTE),
         "409": _error("stale-token (`state`, `token`)")}),
    ("put", "/api/v1/jobs/{job_id}/locations/{collector}", "jobs.add_location", "Record a copy (idempotent)",
     [_JOB_ID, _path("collector", ID)], None,
     {"200": _JOB, "404": _error("no such job" + _NOT_FOUND_ROUTE)}),
    ("delete", "/api/v1/jobs/{job_id}/locations/{collector}", "jobs.remove_location", "Forget a copy (idempotent)",
     [_JOB_ID, _path("collector", ID)], None,
     {"200": _JOB, "404": _error("no such job" + _NOT_FOUND_ROUTE)}),
    ("post", "/api/v1/maintenance/expire", "jobs.expire",
     "Expire held and failed jobs past their lifetime; lapsed releases back to held as interrupted", [],
     _request({"type": "object"}, required=False),
     {"200": _json(_closed({"expired": {"type": "array", "items": _ref("Job")},
                            "interrupted": {"type": "array", "items": _ref("Job")}}))}),
    ("get", "/api/v1/users/{name}/jobs", "jobs.user_jobs",
     "What the user sees at a terminal: held, releasing and failed jobs, oldest first",
     [_path("name", USER), {**_LIMIT, "description": "absent: all"}], None,
     {"200": _json(_closed({"jobs": {"type": "array", "items": _ref("Job")}, "total": _COUNT})),
      "404": _error("a name with a '/' in it (no such route)")}),
    ("post", "/api/v1/users", "users.upsert", "Create or change a user (badge and PIN are stored hashed)", [],
     _request(USER_REQUEST), {
         "201": _one("user", "User", "created"), "200": _one("user", "User", "changed"),
         "400": _error("malformed request; weak-pin; not-serviced"),
         "409": _error("badge-taken, email-taken: another user has this badge or address")}),
    ("post", "/api/v1/identities/email", "users.resolve_email",
     "The user a sender's address belongs to (mail and upload intake); auto-provisioned when the policy says so",
     [], _request(EMAIL_REQUEST), {
         "200": _json(_closed({"user": _STRING, "email": _STRING, "provisioned": {"type": "boolean"},
                               "guest": {"type": "boolean", "description": "no account: a guest (guest_printing)"}})),
         "400": _error("not a plain email address"),
         "403": _error("not-serviced (`domain`), unknown-user, user-denied (`user`); or the caller's role may not")}),
    ("get", "/api/v1/users", "users.list_users", "Every user (no hashes)", [], None, {"200": _list("users", "User")}),
    ("delete", "/api/v1/users/{name}", "users.remove", "Remove a user", [_path("name", USER)], None,
     {"200": _json(_closed({"deleted": _STRING})), "404": _error("no such user" + _NOT_FOUND_ROUTE)}),
    ("post", "/api/v1/auth", "users.auth",
     "Check a badge, or a user name and PIN (throttled per terminal, source address and user)", [],
     _request(AUTH_REQUEST), {
         "200": _json(_closed({"user": _STRING, "job": _STRING, "jobs": {"type": "array", "items": _ref("Job")},
                               "total": _COUNT}, optional=("job", "jobs", "total"))),
         "401": _error("bad-credentials: unknown badge, unknown user and wrong PIN alike; or no certificate"),
         "403": _error("terminal-revoked; user-denied (the right credentials of a denied user); or the caller's "
                       "role may not"),
         "423": _error("locked (`retry_after`)", _RETRY_AFTER),
         "429": _error("too-many-attempts (`retry_after`)", _RETRY_AFTER)}),
    ("get", "/api/v1/printers", "printers.list_printers", "Printers matching every filter given (case-insensitive)", [
        _query("q", {"type": "string", "maxLength": 255}, "a substring of the id, location, building, room or a tag"),
        _query("tag", {"type": "array", "items": _STRING}, "every one given"),
        _query("capability", {"type": "array", "items": _STRING}, "every one given"),
        _query("site", {"type": "string", "maxLength": 255}), _query("building", {"type": "string", "maxLength": 255}),
        _query("floor", {"type": "string", "maxLength": 255})], None, {"200": _list("printers", "Printer")}),
    ("post", "/api/v1/printers", "printers.upsert", "Create a printer, or change the fields given", [],
     _request(PRINTER_REQUEST), {"201": _one("printer", "Printer", "created"),
                                 "200": _one("printer", "Printer", "changed")}),
    ("get", "/api/v1/printers/{printer_id}", "printers.get", "One printer", [_PRINTER_ID], None,
     {"200": _one("printer", "Printer"), "404": _error("no such printer" + _NOT_FOUND_ROUTE)}),
    ("delete", "/api/v1/printers/{printer_id}", "printers.remove", "Remove a printer", [_PRINTER_ID], None,
     {"200": _json(_closed({"deleted": _STRING})), "404": _error("no such printer" + _NOT_FOUND_ROUTE)}),
    ("put", "/api/v1/printers/{printer_id}/status", "printers.report_status",
     "A collector's SNMP reading (an older reading than the stored one is ignored)", [_PRINTER_ID],
     _request(STATUS_REQUEST), {"200": _json(_closed({"printer": _ref("Printer"), "changed": {"type": "boolean"}})),
                                "404": _error("no such printer" + _NOT_FOUND_ROUTE)}),
    ("put", "/api/v1/printers/{printer_id}/service", "printers.set_service",
     "Take a printer out of service (with a reason) or put it back", [_PRINTER_ID], _request(SERVICE_REQUEST),
     {"200": _one("printer", "Printer"), "404": _error("no such printer" + _NOT_FOUND_ROUTE)}),
    ("post", "/api/v1/collectors/{collector_id}/heartbeat", "collectors.heartbeat",
     "A collector is alive, at `url`, in `site`; answers every collector", [_path("collector_id", ID)],
     _request(HEARTBEAT_REQUEST, required=False), {
         "200": _list("collectors", "Collector"),
         "403": _error("forbidden: only the certificate of collector {collector_id} itself may heartbeat for it"),
         "404": _error("a collector id with a '/' in it (no such route)")}),
    ("get", "/api/v1/collectors", "collectors.list_collectors", "Every collector, alive or not", [], None,
     {"200": _list("collectors", "Collector")}),
    ("get", "/api/v1/sync", "collectors.sync",
     "The directory collectors cache for degraded mode: hashes and digests, never secrets", [], None,
     {"200": _json(SYNC)}),
    ("get", "/api/v1/events", "events.list_events", "Events with an id above `since`, oldest first", [
        _query("since", {"type": "integer", "minimum": 0, "maximum": 2**62}),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
        _query("kind", _STRING), _query("user", _STRING), _query("job", _STRING),
        _query("offline", {"type": "string", "enum": ["", "true", "false", "1", "0", "yes", "no"]},
               "only replayed events, or none of them")], None, {"200": _list("events", "Event")}),
    ("get", "/api/v1/reports/pages", "accounting.pages", "Pages printed per user, printer or site", [
        _query("by", {"type": "string", "enum": ["user", "printer", "site", "source"]}),
        _query("from", TIME, "prints at or after"), _query("to", TIME, "prints before"),
        _query("format", {"type": "string", "enum": ["json", "csv"]}, "default json")], None,
     {"200": {"description": "the report", "content": {
         "application/json": {"schema": _closed({
             "by": _STRING, "from": _NULLABLE_TIME, "to": _NULLABLE_TIME,
             "rows": {"type": "array", "items": _ref("ReportRow")},
             "total": {"type": "object", "additionalProperties": _COUNT}})},
         "text/csv": {"schema": {"type": "string"}}}}}),
    ("post", "/api/v1/submitters", "submitters.issue",
     "Issue (or rotate) a submitting host's credential; the token is shown this once", [],
     _request(SUBMITTER_REQUEST), {
         "201": _json(_closed({"submitter": _ref("Submitter"), "token": _STRING}), "issued"),
         "200": _json(_closed({"submitter": _ref("Submitter"), "token": _STRING}),
                      "re-issued: the old credential stops at the collectors' next sync")}),
    ("get", "/api/v1/submitters", "submitters.list_submitters", "Every submitting host (no token, no digest)", [],
     None, {"200": _list("submitters", "Submitter")}),
    ("delete", "/api/v1/submitters/{host}", "submitters.revoke", "Revoke a submitting host's credential (kept, "
     "inactive)", [_path("host", HOST)], None,
     {"200": _one("submitter", "Submitter"), "404": _error("no such submitting host" + _NOT_FOUND_ROUTE)}),
    ("post", "/api/v1/submitters/lookup", "submitters.lookup",
     "A submit credential a collector's directory does not hold yet (issued since its last sync)", [],
     _request(LOOKUP_REQUEST),
     {"200": _one("submitter", "Submitter"),
      "404": _error("unknown-submitter: no active submitting host has this credential")}),
    ("post", "/api/v1/terminals", "terminals.add",
     "Enrol a release terminal for a printer; the token is shown this once", [], _request(TERMINAL_REQUEST), {
         "201": _json(_closed({"terminal": _ref("Terminal"), "token": _STRING}), "enrolled"),
         "404": _error("no such printer"), "409": _error("terminal-exists")}),
    ("get", "/api/v1/terminals", "terminals.list_terminals", "Every terminal (no token, no digest)", [], None,
     {"200": _list("terminals", "Terminal")}),
    ("post", "/api/v1/terminals/enroll", "terminals.redeem",
     "Redeem a kiosk page's one-time enrollment code (passed on by its collector) for a fresh token", [],
     _request(REDEEM_REQUEST), {
         "201": _json(_closed({"terminal": _ref("Terminal"), "token": _STRING}), "enrolled"),
         "403": _error("enrollment-refused: unknown, used or expired code; or the caller's role may not")}),
    ("post", "/api/v1/terminals/lookup", "terminals.lookup",
     "A terminal credential a collector's directory does not hold yet (enrolled since its last sync)", [],
     _request(LOOKUP_REQUEST),
     {"200": _json(_closed({"terminal": _closed({"id": _STRING, "printer": _STRING})})),
      "404": _error("unknown-terminal: no active terminal has this credential")}),
    ("get", "/api/v1/terminals/{terminal_id}", "terminals.get", "One terminal", [_path("terminal_id", TERMINAL)],
     None, {"200": _one("terminal", "Terminal"), "404": _error("no such terminal" + _NOT_FOUND_ROUTE)}),
    ("delete", "/api/v1/terminals/{terminal_id}", "terminals.revoke", "Revoke a terminal (kept, inactive)",
     [_path("terminal_id", TERMINAL)], None,
     {"200": _one("terminal", "Terminal"), "404": _error("no such terminal" + _NOT_FOUND_ROUTE)}),
    ("post", "/api/v1/terminals/{terminal_id}/enrollment", "terminals.enrollment",
     "A one-time enrollment code for the kiosk page's link /release/enroll#code=CODE (shown once)",
     [_path("terminal_id", TERMINAL)], _request(ENROLLMENT_REQUEST, required=False), {
         "201": _json(_closed({"terminal": _ref("Terminal"), "code": _STRING, "expires_at": _ANSWER_TIME,
                               "path": _STRING})),
         "404": _error("no such terminal" + _NOT_FOUND_ROUTE), "409": _error("terminal-revoked")}),
]

_TEXT = {"type": "string"}
PUBLIC: list[Operation] = [
    ("get", "/healthz", "healthz", "Process alive", [], None, {"200": _json(_closed({"status": {"const": "ok"}}))}),
    ("get", "/readyz", "readyz", "Can do its work now (the database answers, at this analyst's schema)", [], None,
     {"200": _json(_closed({"status": {"const": "ready"}})),
      "503": _error("database-unavailable, schema-outdated")}),
    ("get", "/metrics", "metrics_page", "Prometheus metrics", [], None,
     {"200": {"description": "text", "content": {"text/plain": {"schema": _TEXT}}}}),
    ("get", "/pki/crl", "crl", "The cluster CA's revocation list (signed: anyone may have it)", [], None,
     {"200": {"description": "DER", "content": {"application/pkix-crl": {"schema": _TEXT}}},
      "404": _error("no-crl: this analyst has none")}),
    ("get", "/openapi.json", "openapi", "This document", [], None, {"200": _json({"type": "object"})}),
]
_HTML = {"description": "HTML", "content": {"text/html": {"schema": _TEXT}}}
_SEE_OTHER = {"description": "done: the next page", "headers": {"Location": {"schema": _TEXT}}}
_CONSOLE_REFUSALS = {
    "303": {"description": "no session (or an expired one): to /console/login",
            "headers": {"Location": {"schema": _TEXT}}},
    "400": _error("bad-field: a search filter or date is malformed (`field`)"),
    "404": _error("not-found: the console is disabled (no console account)")}
_FORM_REFUSALS = {
    "400": _error("bad-field: a form field is malformed, nothing changed"),
    "401": _error("unauthenticated: no console session"),
    "403": _error("csrf-failed: the form did not come from the console page; read-only: the account may not act"),
    "404": _error("the console is disabled, or no such thing" + _NOT_FOUND_ROUTE)}


_SEARCH = [_query(name, _TEXT) for name in ("since", "until", "user", "printer", "collector", "kind", "job")] + [
    _query("page", {"type": "integer", "minimum": 1})]


def _console_page(path: str, endpoint: str, summary: str, parameters: list[Schema] | None = None) -> Operation:
    return ("get", path, endpoint, summary, parameters or [], None, {"200": _HTML, **_CONSOLE_REFUSALS})


def _console_form(path: str, endpoint: str, summary: str, fields: dict[str, Schema],
                  parameters: list[Schema] | None = None, required: tuple[str, ...] = ()) -> Operation:
    body = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _body(
        {"csrf": _TEXT, **fields}, required=("csrf", *required))}}}
    return ("post", path, endpoint, summary, parameters or [], body, {"303": _SEE_OTHER, **_FORM_REFUSALS})


CONSOLE: list[Operation] = [
    ("get", "/console/login", "console.login_form", "The console's sign-in form (HTML)", [], None,
     {"200": _HTML, "404": _error("not-found: the console is disabled (no console account)")}),
    ("post", "/console/login", "console.login", "Sign in: a session cookie (Secure, HttpOnly, SameSite=Strict)", [],
     {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _body(
         {"csrf": _TEXT, "name": _TEXT, "password": _TEXT}, required=("csrf", "name", "password"))}}},
     {"303": _SEE_OTHER, "401": _HTML, "403": _HTML, "429": _HTML,
      "404": _error("not-found: the console is disabled (no console account)")}),
    _console_form("/console/logout", "console.logout", "Sign out: the session ends", {}),
    ("get", "/console/static/{filename}", "console.static", "The console's stylesheet",
     [_path("filename", _TEXT)], None, {"200": {"description": "CSS", "content": {"text/css": {"schema": _TEXT}}},
                                         "404": _error("no such file")}),
    _console_page("/console", "console.console", "The fleet: collectors, printers, job counts, the newest events"),
    _console_form("/console/printers/{printer_id}/service", "console.printer_service",
                  "A printer out of service (with a reason) or back", {
                      "in_service": {"type": "string", "enum": ["true", "false"]}, "reason": {"type": "string"}},
                  [_PRINTER_ID], ("in_service",)),
    _console_form("/console/collectors/{collector_id}/{action}", "console.collector_state",
                  "Drain a collector at every load balancer (analyst.lb_sockets), or ready it", {},
                  [_path("collector_id", ID), _path("action", {"type": "string", "enum": ["drain", "ready"]})]),
    _console_form("/console/jobs/{job_id}/delete", "console.delete_job",
                  "Delete a held or failed job (recorded; its copies are crypto-shredded)",
                  {"reason": {"type": "string"}, "back": _TEXT}, [_JOB_ID]),
    _console_page("/console/jobs", "console.jobs_page", "Jobs searched (time range, user, printer, collector, "
                  "state as kind, job id), paged", _SEARCH),
    _console_page("/console/events", "console.events_page", "The event log searched, paged", _SEARCH),
    ("get", "/console/jobs.csv", "console.jobs_csv", "The jobs found, as CSV (formula-like cells defused)", _SEARCH,
     None, {"200": {"description": "CSV", "content": {"text/csv": {"schema": _TEXT}}}, **_CONSOLE_REFUSALS}),
    ("get", "/console/events.csv", "console.events_csv", "The events found, as CSV (formula-like cells defused)",
     _SEARCH, None, {"200": {"description": "CSV", "content": {"text/csv": {"schema": _TEXT}}},
                     **_CONSOLE_REFUSALS}),
    _console_page("/console/manage", "console.manage_page", "Users and printers, with forms to add or change them"),
    _console_form("/console/users", "console.user_form", "Add or change a user (email, PIN, allowed)", {
        "name": _TEXT, "email": _TEXT, "pin": _TEXT, "allowed": {"type": "string", "enum": ["keep", "allow", "deny"]}},
        required=("name",)),
    _console_form("/console/printers", "console.printer_form", "Add or change a printer (blank fields: kept)", {
        "id": _TEXT, "uri": _TEXT, "site": _TEXT, "location": _TEXT, "building": _TEXT, "floor": _TEXT,
        "room": _TEXT, "snmp_host": _TEXT, "tags": _TEXT}, required=("id",)),
    _console_page("/console/reports", "console.reports_page", "Pages printed per day, user, printer and site: SVG "
                  "charts", [_query("from", _TEXT, "first day, YYYY-MM-DD"), _query("to", _TEXT, "last day")]),
]

# What every /api/ operation may answer besides its own answers.
_API_ERRORS = {
    "400": _error("malformed request: malformed-json, bad-field or missing-field (`field`), a bad id in the path"),
    "401": _error("unauthenticated: no cluster certificate (mutual TLS)"),
    "403": _error("forbidden: the certificate's role may not make this call"),
    "503": _error("database-unavailable; database-busy (SQLite: no turn to write within 30 s)"),
}
_BODY_ERRORS = {"413": _error("request-entity-too-large: a body over 1 MiB")}
# gunicorn's own answer (HTML, before the analyst sees the request): a request line over its
# limit_request_line, 4094 bytes, which long query values reach.
_QUERY_ERRORS = {"414": {"description": "URI Too Long: gunicorn refuses a request line over 4094 bytes",
                         "content": {"text/html": {"schema": {"type": "string"}}}}}
_WRITE_ERRORS = {"409": _error("conflict: a concurrent change conflicts with this one; retry")}
# Heartbeats are the one call the role table's `collector` is not enough for: the view wants that collector.
_OWN_CERTIFICATE_ONLY = {"collectors.heartbeat": ("collector",)}


def _security(endpoint: str) -> list[dict[str, list[str]]]:
    from analyst.app import roles_for  # the role table; analyst.app imports this module only when serving it

    roles = _OWN_CERTIFICATE_ONLY.get(endpoint) or roles_for(endpoint)
    return [{"clusterCertificate": [role]} for role in roles]


def _operation(op: Operation, *, api: bool) -> Schema:
    _, path, endpoint, summary, parameters, body, answers = op
    responses: dict[str, Schema] = {}
    if api:
        responses.update(_API_ERRORS)
        if body is not None:
            responses.update(_BODY_ERRORS)
        if any(parameter["in"] == "query" for parameter in parameters):
            responses.update(_QUERY_ERRORS)
        if op[0] != "get":
            responses.update(_WRITE_ERRORS)
    responses.update(answers)
    operation: Schema = {"operationId": endpoint, "summary": summary, "responses": dict(sorted(responses.items()))}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    if api:
        roles = _security(endpoint)
        operation["security"] = roles
        operation["description"] = "Certificate role: " + " or ".join(next(iter(r.values()))[0] for r in roles)
    elif path.startswith("/console"):
        operation["security"] = [] if path in ("/console/login", "/console/static/{filename}") else \
            [{"consoleSession": []}]
    else:
        operation["security"] = []
    return operation


@functools.cache
def document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS + PUBLIC + CONSOLE:
        paths.setdefault(op[1], {})[op[0]] = _operation(op, api=op[1].startswith("/api/"))
    return {
        "openapi": "3.1.0",
        "info": {"title": "pullprint analyst", "version": "1",
                 "description": "The central registry: jobs and their copies, users, printers, collectors, "
                                "terminals, submitting hosts, events, reports. Errors are "
                                "{\"error\": code, \"message\": text, …}. See docs/api.md."},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "clusterCertificate": {
                    "type": "mutualTLS",
                    "description": "A client certificate from the cluster CA; the role in it (`collector` for the "
                                   "collectors' own calls, `admin` for administration) decides what it may call. "
                                   "A revoked certificate is refused. Without one: 401; another role: 403."},
                "consoleSession": {"type": "apiKey", "in": "cookie", "name": "__Host-pullprint-console",
                                   "description": "a console session from POST /console/login (failed sign-ins "
                                                  "throttled per address); forms also carry its CSRF token"}},
        },
        "paths": paths,
    }
