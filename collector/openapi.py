"""The collector's OpenAPI 3.1 document, served at /openapi.json (terminal apps and load tests build on it)."""

from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error", "message"],
          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
_JOB = {"type": "object", "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "pages": {"type": ["integer", "null"]},
    "size": {"type": "integer"}, "copies": {"type": "integer"}, "submitted_at": {"type": "string"},
    "expires_at": {"type": "string"}, "state": {"type": "string"}, "available": {"type": "boolean"},
    "reason": {"type": "string"}, "message": {"type": "string"}}}
_LISTING = {"type": "object", "properties": {
    "user": {"type": "string"}, "printer": {"type": "string"},
    "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"},
             "description": "oldest first, at most terminal_job_limit (100) of them"},
    "jobs_total": {"type": "integer", "description": "all the user's open jobs; release all takes every one"},
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


TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "pullprint collector", "version": "1"},
    "components": {
        "schemas": {"Error": _ERROR, "Job": _JOB, "Listing": _LISTING, "ReleaseResult": _RESULT},
        "securitySchemes": {"submitToken": {"type": "http", "scheme": "bearer"},
                            "clusterToken": {"type": "http", "scheme": "bearer"}},
    },
    "paths": {
        "/api/v1/jobs": {"post": {
            "summary": "Submit a document (the CUPS backend); answers only once the job is durable",
            "security": [{"submitToken": []}],
            "parameters": [{"name": h, "in": "header", "schema": {"type": "string"}} for h in (
                "X-Pullprint-Owner", "X-Pullprint-Title", "X-Pullprint-Copies", "X-Pullprint-Options",
                "X-Pullprint-Origin-Host", "X-Pullprint-Cups-Job-Id", "Idempotency-Key")],
            "requestBody": {"required": True, "content": {"application/octet-stream": {}}},
            "responses": {
                "201": _json({"type": "object", "properties": {"id": {"type": "string"}}}, "stored"),
                "200": _json({"type": "object", "properties": {"id": {"type": "string"}}}, "repeated key"),
                "400": _error("bad headers, a truncated upload, or more than max_copies (too-many-copies)"),
                "401": _error("no valid submitting-host credential (unknown-submitter: unknown or revoked)"),
                "409": _error("the owner's quota of held jobs or bytes is full (quota-exceeded; `limit` names it)"),
                "413": _error("larger than max_job_bytes"),
                "503": _error("cannot keep the copies a job needs now (too-few-copies, replication-failed), or no "
                               "directory synced yet (directory-not-synced); retry")}}},
        "/api/v1/sessions": {"post": {
            "summary": "Log in at a printer with a badge, or a user name and PIN",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["printer"], "properties": {
                    "printer": {"type": "string"}, "badge": {"type": "string"},
                    "user": {"type": "string"}, "pin": {"type": "string"}}}}}},
            "responses": {
                "201": _json({"allOf": [{"$ref": "#/components/schemas/Listing"},
                                        {"type": "object", "properties": {"session": {"type": "string"}}}]}),
                "400": _error("malformed request"), "401": _error("badge or PIN not recognised"),
                "404": _error("unknown printer"), "413": _error(_TOO_LARGE),
                "423": _error("locked out after repeated failures")}}},
        "/api/v1/sessions/{token}": {
            "parameters": [TOKEN],
            "get": {"summary": "The session's jobs, fresh", "responses": {
                "200": _json({"$ref": "#/components/schemas/Listing"}), "401": _error("session ended")}},
            "delete": {"summary": "Log out", "responses": {"200": _json({"type": "object"}),
                                                         "401": _error("session ended")}}},
        "/api/v1/sessions/{token}/release": {"post": {
            "summary": "Release jobs at the session's printer",
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
                "401": _error("session ended"), "413": _error(_TOO_LARGE),
                "409": _error("the same Idempotency-Key is being carried out")}}},
        "/release": {"get": {"summary": "The kiosk release station (HTML)",
                             "parameters": [{"name": "printer", "in": "query", "schema": {"type": "string"}}],
                             "responses": {"200": {"description": "HTML page"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        "/healthz": {"get": {"summary": "Process alive", "responses": {"200": _json({"type": "object"})}}},
        "/readyz": {"get": {"summary": "Can do its work now", "responses": {
            "200": _json({"type": "object"}), "503": _json({"type": "object"}, "not ready, with a reason")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        "/internal/v1/replicas/{id}": {"put": {
            "summary": "Store a peer's sealed copy (verified before the answer)", "security": [{"clusterToken": []}],
            "responses": {"201": _json({"type": "object"}), "400": _error("copy does not verify")}}},
        "/internal/v1/replicas/{id}/commit": {"put": {
            "summary": "The job is registered: a provisional copy becomes a real one",
            "security": [{"clusterToken": []}], "responses": {"200": _json({"type": "object"})}}},
        "/internal/v1/jobs/{id}/spool": {"get": {
            "summary": "Fetch a sealed copy (pull)", "security": [{"clusterToken": []}],
            "responses": {"200": {"description": "sealed bytes; metadata in X-Pullprint-Meta"}}}},
        "/internal/v1/jobs/{id}/print": {"post": {
            "summary": "Direct print by the holder, under the caller's claim", "security": [{"clusterToken": []}],
            "responses": {"200": _json({"$ref": "#/components/schemas/ReleaseResult"}),
                          "403": _error("claim-not-confirmed: not the caller's claim on this job for this printer"),
                          "404": _error("no copy here, or a printer the directory does not have")}}},
        "/internal/v1/jobs/{id}": {"delete": {
            "summary": "Crypto-shred and delete a copy", "security": [{"clusterToken": []}],
            "responses": {"200": _json({"type": "object"})}}},
        "/internal/v1/users/{user}/jobs": {"get": {
            "summary": "Jobs this node holds for a user (degraded mode)", "security": [{"clusterToken": []}],
            "responses": {"200": _json({"type": "object"})}}},
    },
}
