"""Submitter logic: issue (or re-issue) a host's credential, list, revoke, the digests collectors sync or ask after."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.events.service import record_event
from analyst.submitters.models import Submitter
from pullprint.credentials import new_secret, token_digest
from pullprint.errors import BadRequest, NotFound

# A host name as DNS and CUPS spell it (what job-originating-host-name holds); no spaces or slashes.
HOST_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,254}\Z")
MAX_DESCRIPTION = 255


def check_host(value: Any, name: str = "host") -> str:
    if not isinstance(value, str) or not HOST_PATTERN.match(value):
        raise BadRequest("bad-field", f"{name} must be a host name (1-255 letters, digits, '.', '-', '_')",
                         field=name)
    return value


def submitter_to_dict(submitter: Submitter) -> dict[str, Any]:
    """A submitter as the API answers it: never the token nor its digest."""
    return {"host": submitter.id, "description": submitter.description, "created_at": v.iso(submitter.created_at),
            "revoked_at": v.iso(submitter.revoked_at), "active": submitter.revoked_at is None}


def issue(session: Session, host: str, *, now: datetime, description: str | None = None,
          ) -> tuple[Submitter, str, bool]:
    """A fresh credential for `host`; returns (submitter, token, created).

    Issuing again for a known host replaces its credential (a rotation, or a revoked host brought
    back): the old token stops working once the collectors' next directory sync brings the new digest.
    """
    host = check_host(host)
    token = new_secret(32)
    submitter = session.get(Submitter, host)
    created = submitter is None
    if submitter is None:
        submitter = Submitter(id=host, description=description or "", token_hash=token_digest(token),
                              created_at=now, revoked_at=None)
        session.add(submitter)
    else:
        submitter.token_hash = token_digest(token)
        submitter.created_at = now
        submitter.revoked_at = None
        if description is not None:
            submitter.description = description
    session.flush()
    record_event(session, "submitter-issued", now=now, detail={"host": host, "rotated": not created})
    return submitter, token, created


def list_submitters(session: Session) -> list[Submitter]:
    return list(session.scalars(select(Submitter).order_by(Submitter.id)))


def revoke(session: Session, host: str, *, now: datetime) -> Submitter:
    """Revoke `host`'s credential; collectors refuse it from their next directory sync on."""
    submitter = session.get(Submitter, check_host(host))
    if submitter is None:
        raise NotFound("not-found", f"no submitting host {host!r}")
    if submitter.revoked_at is None:
        submitter.revoked_at = now
        record_event(session, "submitter-revoked", now=now, detail={"host": host})
    session.flush()
    return submitter


def submitter_by_digest(session: Session, token_hash: str) -> Submitter | None:
    """The active submitting host whose token has this digest, or None."""
    submitter = session.scalars(select(Submitter).where(Submitter.token_hash == token_hash)).first()
    return submitter if submitter is not None and submitter.revoked_at is None else None


def sync_submitters(session: Session) -> list[dict[str, str]]:
    """What collectors need to check a submit's bearer token: the active hosts and their token digests."""
    rows = session.scalars(select(Submitter).where(Submitter.revoked_at.is_(None)).order_by(Submitter.id))
    return [{"host": s.id, "token_hash": s.token_hash} for s in rows]
