"""The error type every service turns into a JSON answer."""

from __future__ import annotations


class PullprintError(Exception):
    """An error with a stable machine-readable code, a human message and an HTTP status."""

    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.details = details

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        body.update(self.details)
        return body


class BadRequest(PullprintError):
    status = 400


class Unauthorized(PullprintError):
    status = 401


class Forbidden(PullprintError):
    status = 403


class NotFound(PullprintError):
    status = 404


class Conflict(PullprintError):
    status = 409


class TooLarge(PullprintError):
    status = 413


class Locked(PullprintError):
    status = 423


class Unavailable(PullprintError):
    status = 503


class TooManyRequests(PullprintError):
    """Throttled: the answer carries `retry_after` (seconds)."""

    status = 429
