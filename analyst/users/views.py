"""HTTP views for users and authentication."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from analyst import validate as v
from analyst.users import service
from analyst.web import analyst, json_body, now, transaction
from pullprint.errors import Locked, Unauthorized

bp = Blueprint("users", __name__, url_prefix="/api/v1")

BAD_CREDENTIALS = "badge or PIN not recognised"


def _optional(body: dict[str, object], name: str, max_len: int) -> str | None:
    # Absent: keep what is stored; null or "": remove it.
    if name not in body:
        return service.KEEP
    return v.text(body, name, max_len=max_len) or None


@bp.post("/users")
def upsert() -> ResponseReturnValue:
    body = json_body()
    name = v.user_name(v.required_text(body, "name", max_len=64), "name")
    with transaction() as session:
        user, created = service.upsert_user(
            session, name, pepper=analyst().pepper, now=now(), badge=_optional(body, "badge", service.MAX_BADGE),
            pin=_optional(body, "pin", service.MAX_PIN), email=_optional(body, "email", 255))
        return {"user": service.user_to_dict(user)}, 201 if created else 200


@bp.get("/users")
def list_users() -> ResponseReturnValue:
    with transaction() as session:
        return {"users": [service.user_to_dict(user) for user in service.list_users(session)]}


@bp.delete("/users/<name>")
def remove(name: str) -> ResponseReturnValue:
    with transaction() as session:
        service.remove_user(session, name)
    return {"deleted": name}


@bp.post("/auth")
def auth() -> ResponseReturnValue:
    body = json_body()
    badge = v.text(body, "badge", max_len=service.MAX_BADGE)
    user = v.text(body, "user", max_len=64)
    pin = v.text(body, "pin", max_len=service.MAX_PIN)
    printer = v.text(body, "printer", max_len=64)
    collector = v.text(body, "collector", max_len=64)
    state = analyst()
    with transaction() as session:
        result = service.authenticate(session, pepper=state.pepper, now=now(), lockout=state.lockout,
                                      badge=badge, user=user, pin=pin, printer=printer, collector=collector)
    # Raised only after the commit above, so failures and their events are kept.
    if result.retry_after is not None:
        raise Locked("locked", "too many wrong PINs; try again later", retry_after=result.retry_after)
    if result.user is None:
        raise Unauthorized("bad-credentials", BAD_CREDENTIALS)
    return {"user": result.user}
