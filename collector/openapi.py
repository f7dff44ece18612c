"""The collector's OpenAPI 3.1 document, served at /openapi.json (terminal apps and load tests build on it)."""

from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error", "message"],
          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
_JOB = {"type": "object", "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "pages": {"type": ["integer", "null"]},
    "size": {"type": "integer"}, "copies": {"type": "integer"}, "submitted_at": {"type": "string"},
    "duplex": {"type": "boolean", "description": "two-sided by the job's options"},
    "color": {"type": "boolean", "description": "colour by the job's options (auto or none: false)"},
    "media": {"type": "string", "description": "the job's media option, \"\" when it named none"},
    "expires_at": {"type": "string"}, "state": {"type": "string"}, "available": {"type": "boolean"},
    "reason": {"type": "string"}, "message": {"type": "string"}}}
_LISTING = {"type": "object", "properties": {
    "user": {"type": "string"}, "printer": {"type": "string"},
    "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"},
             "description": "oldest first, at most terminal_job_limit (100) of them"},
    "jobs_total": {"type": "integer", "description": "all the user's open jobs; release all takes every one"},
    "idle_seconds": {"type": "integer", "description": "the session ends after this long without a call"},
    "warnings": {"type": "array", "items": {"type": "string"}}}}
_RESULT = {"type": "object", "required": ["id", "status"], "properties": {
    "id": {"type": "string"},
    "status": {"type": "string", "description": "printed, queued, or why not: printer-error:jammed, "
                                                "not-found, not-owner, not-releasable, unavailable, …"},
    "message": {"type": "string"}, "warnings": {"type": "array", "items": {"type": "string"}}}}


# Bounded input (docs/api.md, "Limits"): every JSON body, and the ids a release names.
_TOO_LARGE = "body-too-large: a JSON body over max_json_bytes (64 KiB)"
_RELEASE_IDS = ("job ids as listed; one that is not a job id (32 lower-case hex digits) or not the user's "
                "is answered not-found in its result")


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_WRONG_TERMINAL = "wrong-terminal: the session belongs to another release station"
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
# Another collector, by the role in its certificate (collector/internal_api.py: peer.require("collector")).
NODE_CALL = [{"clusterCertificate": ["collector"]}]
# What every node call may answer besides its own results (found by tests/fuzz/test_collector_openapi.py).
_NODE_ERRORS = {"403": _error("forbidden: the caller's certificate is not a collector's"),
                "404": _error("not-found: no such job here (an id not in the collectors' format is none)")}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "pullprint collector", "version": "1"},
    "components": {
        "schemas": {"Error": _ERROR, "Job": _JOB, "Listing": _LISTING, "ReleaseResult": _RESULT},
        "securitySchemes": {"submitToken": {"type": "http", "scheme": "bearer",  # pullprint submitter add HOST
                                            "description": "the submitting host's own credential"},
                            # An enrolled terminal's credential (analyst: POST /api/v1/terminals, or an
                            # enrollment code redeemed at POST /api/v1/terminals/enroll). Optional only
                            # where the site allows unenrolled terminals (allow_unenrolled_terminals).
                            "terminalToken": {"type": "http", "scheme": "bearer"},
                            # A user's own name (or email) and PIN: uploads (docs/email.md).
                            "userPin": {"type": "http", "scheme": "basic"},
                            # Node calls (/internal/): mutual TLS, a certificate from the cluster CA whose role
                            # is collector; the collector's port takes no connection without a cluster
                            # certificate (the public calls reach it through HAProxy's, role lb).
                            "clusterCertificate": {"type": "mutualTLS",
                                                   "description": "a cluster CA certificate; its role decides"}},
    },
    "paths": {
        "/api/v1/jobs": {"post": {
            "summary": "Submit a document (the CUPS backend); answers only once the job is durable",
            "security": [{"submitToken": []}],
            "parameters": [{"name": h, "in": "header", "schema": {"type": "string"}} for h in (
                "X-Pullprint-Owner", "X-Pullprint-Title", "X-Pullprint-Copies", "X-Pullprint-Options",
                "X-Pullprint-Origin-Host", "X-Pullprint-Cups-Job-Id", "Idempotency-Key",
                "X-Pullprint-Owner-Email", "X-Pullprint-Print-At")],
            "requestBody": {"required": True, "content": {"application/octet-stream": {}}},
            "responses": {
                "201": _json({"type": "object", "properties": {
                    "id": {"type": "string"}, "state": {"type": "string"},
                    "locations": {"type": "array", "items": {"type": "string"}},
                    "pages": {"type": ["integer", "null"]},
                    "release_code": {"type": "string", "description": "a guest's job (X-Pullprint-Owner-Email "
                                     "outside the serviced domains, guest_printing on): the code that releases "
                                     "it, shown this once"},
                    "printed": {"type": "object", "description": "X-Pullprint-Print-At (mail to a printer's "
                                "own address): what became of the job there; anything but printed or "
                                "queued leaves it held", "properties": {
                                    "printer": {"type": "string"}, "status": {"type": "string"},
                                    "message": {"type": "string"}}}}}, "stored"),
                "200": _json({"type": "object", "properties": {"id": {"type": "string"}}}, "repeated key"),
                "400": _error("bad headers, a truncated upload, or more than max_copies (too-many-copies)"),
                "404": _error("X-Pullprint-Print-At names no printer (unknown-printer)"),
                "401": _error("no valid submitting-host credential (unknown-submitter: unknown or revoked)"),
                "403": _error("X-Pullprint-Owner-Email not served: not-serviced, unknown-user, user-denied"),
                "409": _error("the owner's quota of held jobs or bytes is full (quota-exceeded; `limit` names it); "
                              "the owner is denied (user-denied); X-Pullprint-Print-At names a printer that "
                              "does not print mail at once (not-a-mail-printer)"),
                "413": _error("larger than max_job_bytes"),
                "503": _error("cannot keep the copies a job needs now (too-few-copies, replication-failed); no "
                               "directory synced yet (directory-not-synced); a credential the directory lacks "
                               "cannot be asked after now (analyst-unreachable, credential-check-busy); retry")}}},
        "/api/v1/sessions": {"post": {
            "summary": "Log in at a printer with a badge, or a user name and PIN",
            "description": "An enrolled terminal names its printer through its credential (a `printer` in the "
                           "body must be that one, or 403); an unenrolled client (where the site allows them) "
                           "names it in the body. The session is bound to the terminal (or the client's "
                           "address). Throttled per terminal, address and user name: 429, then 423 for a "
                           "terminal or address, each with `retry_after` and a Retry-After header.",
            "security": [{"terminalToken": []}, {}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "printer": {"type": "string"}, "badge": {"type": "string"},
                    "user": {"type": "string"}, "pin": {"type": "string"},
                    "code": {"type": "string", "description": "a guest job's release code: a session for that "
                                                              "job alone"}}}}}},
            "responses": {
                "201": _json({"allOf": [{"$ref": "#/components/schemas/Listing"},
                                        {"type": "object", "properties": {"session": {"type": "string"}}}]}),
                "400": _error("malformed request"),
                "401": _error("badge or PIN not recognised (bad-credentials: the same for every miss); "
                              "terminal-unknown (credential unknown or revoked); terminal-not-enrolled"),
                "403": _error("wrong-printer: the terminal is enrolled for another printer; terminal-revoked"),
                "404": _error("unknown printer"), "413": _error(_TOO_LARGE),
                "423": _error("this terminal or address is locked out after repeated failures (retry_after)"),
                "429": _error("too-many-attempts: wait retry_after seconds"),
                "503": _error("no directory synced yet (directory-not-synced)")}}},
        "/api/v1/sessions/{token}": {
            "parameters": [TOKEN],
            "get": {"summary": "The session's jobs, fresh", "security": [{"terminalToken": []}, {}], "responses": {
                "200": _json({"$ref": "#/components/schemas/Listing"}), "401": _error("session ended"),
                "403": _error(_WRONG_TERMINAL)}},
            "delete": {"summary": "Log out", "security": [{"terminalToken": []}, {}],
                       "responses": {"200": _json({"type": "object"}), "401": _error("session ended"),
                                     "403": _error(_WRONG_TERMINAL)}}},
        "/api/v1/sessions/{token}/release": {"post": {
            "summary": "Release jobs at the session's printer",
            "security": [{"terminalToken": []}, {}],
            "parameters": [TOKEN, IDEMPOTENCY],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"jobs": {"type": "array", "items": {"type": "string"},
                                                          "maxItems": 500, "description": _RELEASE_IDS},
                                                 "all": {"type": "boolean"},
                                                 "confirm_interrupted": {"type": "boolean"}}}}}},
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "printer": {"type": "string"},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/ReleaseResult"}},
                    "suggestion": {"type": ["object", "null"]}}}),
                "400": _error("malformed request; more than max_release_jobs (500) ids: too-many-jobs"),
                "401": _error("session ended"), "403": _error(_WRONG_TERMINAL), "413": _error(_TOO_LARGE),
                "409": _error("the same Idempotency-Key is being carried out")}}},
        "/api/v1/sessions/{token}/jobs/{id}": {"delete": {
            "summary": "Delete one of the session user's held jobs; every copy is crypto-shredded",
            "description": "Recorded at the analyst first (state deleted, event delete), then the copies are "
                           "shredded on every live holder (a holder that is away shreds its copy when it "
                           "reconciles). Needs the analyst: 503 while it is unreachable.",
            "security": [{"terminalToken": []}, {}],
            "parameters": [TOKEN, {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json({"type": "object", "properties": {"id": {"type": "string"},
                                                               "state": {"type": "string"}}}),
                "401": _error("session ended"), "403": _error(_WRONG_TERMINAL),
                "404": _error("not-found: no such job of this user"),
                "409": _error("not-deletable: the job is being released or is printed"),
                "503": _error("analyst-unreachable: the job is still held")}}},
        "/api/v1/printers/{printer_id}/status": {"get": {
            "summary": "The printer's state from the SNMP cache (the release station's header)",
            "security": [{"terminalToken": []}, {}],
            "parameters": [{"name": "printer_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "printer": {"type": "string"}, "location": {"type": "string"},
                    "state": {"type": "string", "enum": ["ok", "warning", "error", "unreachable", "out-of-service",
                                                         "unmonitored"]},
                    "allowed": {"type": "boolean"}, "reason": {"type": ["string", "null"]},
                    "message": {"type": ["string", "null"]},
                    "warnings": {"type": "array", "items": {"type": "string"}},
                    "errors": {"type": "array", "items": {"type": "string"}}}}),
                "400": _error("bad-field: not a printer id"),
                "401": _error("terminal-unknown or terminal-not-enrolled"),
                "403": _error("wrong-printer: the terminal is enrolled for another printer"),
                "404": _error("unknown printer"),
                "503": _error("no directory synced yet (directory-not-synced)")}}},
        "/api/v1/terminals/enroll": {"post": {
            "summary": "Redeem a one-time enrollment code (the kiosk page's link) for the terminal's credential",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}}}},
            "responses": {
                "201": _json({"type": "object", "properties": {
                    "terminal": {"type": "object", "properties": {"id": {"type": "string"},
                                                                  "printer": {"type": "string"}}},
                    "token": {"type": "string", "description": "shown only here; send as Authorization: Bearer"}}}),
                "400": _error("no code"), "403": _error("enrollment-refused: unknown, used or expired"),
                "413": _error(_TOO_LARGE), "423": _error("this address is locked out (retry_after)"),
                "429": _error("too-many-attempts (retry_after)"),
                "503": _error("the analyst, which redeems codes, cannot be reached now")}}},
        "/release": {"get": {"summary": "The kiosk release station (HTML; docs/terminals.md)",
                             "parameters": [{"name": "printer", "in": "query", "schema": {"type": "string"}},
                                            {"name": "lang", "in": "query", "schema": {"type": "string",
                                                                                       "enum": ["en", "de"]}}],
                             "responses": {"200": {"description": "HTML page"}}}},
        "/upload": {"get": {"summary": "The upload page for phones and laptops (HTML; docs/email.md)",
                            "responses": {"200": {"description": "HTML page"}}}},
        "/api/v1/uploads": {"post": {
            "summary": "A user's upload: each file held as a job of theirs (their own credential, not a submit token)",
            "description": "HTTP Basic with the user's name (or email address) and PIN, throttled like terminal "
                           "logins. Each file becomes a job through the same intake as the CUPS backend's; what "
                           "it is comes from its bytes (PDF, PostScript, PCL, plain text; images and office "
                           "documents rendered to PDF). A guest (collector.guest_uploads) sends "
                           "X-Pullprint-Guest: ADDRESS instead: an address outside the serviced domains; each "
                           "document's release code is mailed there, never answered.",
            "security": [{"userPin": []}, {}],
            "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                           {"name": "X-Pullprint-Guest", "in": "header", "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {
                    "file": {"type": "array", "maxItems": 10, "items": {"type": "string", "format": "binary"}},
                    "copies": {"type": "integer", "minimum": 1, "maximum": 99},
                    "sides": {"type": "string", "enum": ["one-sided", "two-sided"]},
                    "color": {"type": "string", "enum": ["monochrome", "color"]}}}}}},
            "responses": {
                "201": _json({"type": "object", "properties": {
                    "user": {"type": "string"}, "guest": {"type": "string"},
                    "codes_sent_to": {"type": "string", "description": "a guest's upload: where the codes went"},
                    "held": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "title": {"type": "string"},
                        "pages": {"type": ["integer", "null"]}, "copies": {"type": "integer"}}}},
                    "refused": {"type": "array", "items": {"type": "object", "properties": {
                        "title": {"type": "string"}, "reason": {"type": "string"}}}}}}, "held"),
                "400": _error("missing-file, too-many-files, bad-field, length-required"),
                "401": _error("credentials-required, bad-credentials; a guest address with an account: "
                              "account-required"),
                "403": _error("user-denied; guest-uploads-off; not-serviced (the analyst takes no guests)"),
                "413": _error("larger than max_job_bytes"),
                "422": _error("no file could be held (each refused by name)"),
                "423": _error("locked (`retry_after`)"),
                "429": _error("too-many-attempts, too-many-uploads (a guest's; `retry_after`)"),
                "503": _error("cannot keep the copies a job needs now; retry")}}},
        "/api/v1/printers": {"get": {
            "summary": "Printers for people: in service, every word of q in the id, location, building, room or tags",
            "parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}},
                           {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}],
            "responses": {"200": _json({"type": "object", "properties": {"printers": {"type": "array", "items": {
                "type": "object", "properties": {"id": {"type": "string"}, "location": {"type": "string"},
                                                 "tags": {"type": "array", "items": {"type": "string"}}}}}}})}}},
        "/favicon.ico": {"get": {"summary": "The release station's icon (SVG)",
                                 "responses": {"200": {"description": "image/svg+xml"}}}},
        "/release/enroll": {"get": {"summary": "Enrols the browser as a release station: the one-time code "
                                                "comes in the link's #code= fragment, or is typed in (HTML)",
                                    "responses": {"200": {"description": "HTML page"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        "/healthz": {"get": {"summary": "Process alive", "responses": {"200": _json({"type": "object"})}}},
        "/readyz": {"get": {"summary": "Can do its work now", "responses": {
            "200": _json({"type": "object"}), "503": _json({"type": "object"}, "not ready, with a reason")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        "/internal/v1/replicas/{id}": {"put": {
            "summary": "Store a peer's sealed copy (verified before the answer)", "security": NODE_CALL,
            "responses": {"201": _json({"type": "object"}),
                          "400": _error("copy does not verify, or bad-meta: the metadata header is missing or "
                                        "malformed"),
                          "413": _error("larger than max_job_bytes"), **_NODE_ERRORS}}},
        "/internal/v1/replicas/{id}/commit": {"put": {
            "summary": "The job is registered: a provisional copy becomes a real one",
            "security": NODE_CALL, "responses": {"200": _json({"type": "object"}), **_NODE_ERRORS}}},
        "/internal/v1/jobs/{id}/spool": {"get": {
            "summary": "Fetch a sealed copy (pull)", "security": NODE_CALL,
            "responses": {"200": {"description": "sealed bytes; metadata in X-Pullprint-Meta"}, **_NODE_ERRORS}}},
        "/internal/v1/jobs/{id}/print": {"post": {
            "summary": "Direct print by the holder, under the caller's claim", "security": NODE_CALL,
            "description": "The printer is named by id and taken from the directory (never an address from "
                           "the request); the claim must be confirmed by the analyst (or, offline, by the "
                           "site's sealed claim in Redis) before anything is decrypted.",
            "responses": {"200": _json({"$ref": "#/components/schemas/ReleaseResult"}),
                          "400": _error("bad-json, or bad-print-request: no printer id or no claim"),
                          "403": _error("claim-not-confirmed: not the caller's claim on this job for this printer; "
                                        "forbidden: the caller's certificate is not a collector's"),
                          "404": _error("no copy here, or a printer the directory does not have, or an id "
                                        "that is no job id"),
                          "413": _error(_TOO_LARGE)}}},
        "/internal/v1/jobs/{id}": {"delete": {
            "summary": "Crypto-shred and delete a copy", "security": NODE_CALL,
            "responses": {"200": _json({"type": "object"}), **_NODE_ERRORS}}},
        "/internal/v1/users/{user}/jobs": {"get": {
            "summary": "Jobs this node holds for a user (degraded mode)", "security": NODE_CALL,
            "responses": {"200": _json({"type": "object"}), "403": _NODE_ERRORS["403"]}}},
    },
}
