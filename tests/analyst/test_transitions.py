"""Every job state transition, driven through the analyst's service functions, against pullprint.states."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from analyst.db import Database, upgrade
from analyst.jobs import service
from pullprint.errors import Conflict
from pullprint.states import ALLOWED, INTERRUPTED, JobState, can_move
from tests.analyst.conftest import PG_PASSWORD

T0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
LIFETIME = timedelta(hours=8)
LEASE_SECONDS = 120
GRACE = timedelta(seconds=30)
# Every move is tried when every other guard would let it through: the owner asks, with the current
# claim token, the user confirmed, the job is past its lifetime and any lease lapsed past the grace.
ATTEMPT_AT = T0 + LIFETIME + timedelta(hours=2)


def _claim(session: Session, job_id: str, at: datetime, *, confirm: bool = True) -> Any:
    return service.claim_job(session, job_id, user="alice", collector="c1", printer="p1",
                             lease_seconds=LEASE_SECONDS, now=at, confirm_interrupted=confirm)


def _finish(session: Session, job_id: str, at: datetime, state: str, reason: str = "") -> Any:
    token = service.get_job(session, job_id).claim_token
    return service.finish_job(session, job_id, token=token, state=state, reason=reason, now=at)


@dataclass(frozen=True)
class Source:
    """How a job gets into `state` (with `reason`) through the service functions."""

    name: str
    state: JobState
    reason: str
    setup: Callable[[Session, str], object]


def _released_then(state: str, reason: str = "") -> Callable[[Session, str], object]:
    def setup(session: Session, job_id: str) -> None:
        _claim(session, job_id, T0 + timedelta(hours=1))
        _finish(session, job_id, T0 + timedelta(hours=1, minutes=1), state, reason)
    return setup


def _interrupted(session: Session, job_id: str) -> None:
    _claim(session, job_id, T0 + timedelta(hours=1))
    assert service.interrupt_releases(session, now=T0 + timedelta(hours=2), grace=GRACE)


SOURCES = [
    Source("held", JobState.HELD, "", lambda session, job_id: None),
    Source("held-after-a-release", JobState.HELD, "printer-busy", _released_then("held", "printer-busy")),
    Source("held-interrupted", JobState.HELD, INTERRUPTED, _interrupted),
    Source("releasing", JobState.RELEASING, "",
           lambda session, job_id: _claim(session, job_id, T0 + timedelta(hours=1))),
    Source("failed", JobState.FAILED, "print-failed", _released_then("failed", "print-failed")),
    Source("printed", JobState.PRINTED, "", _released_then("printed")),
    Source("expired", JobState.EXPIRED, "expired",
           lambda session, job_id: service.expire_jobs(session, now=T0 + LIFETIME)),
    Source("deleted", JobState.DELETED, "", lambda session, job_id: service.delete_job(
        session, job_id, user="alice", now=T0 + timedelta(hours=1))),
]

Mover = Callable[[Session, str], object]


def _expire(session: Session, job_id: str) -> None:
    service.expire_jobs(session, now=ATTEMPT_AT)


def _interrupt(session: Session, job_id: str) -> None:
    service.interrupt_releases(session, now=ATTEMPT_AT, grace=GRACE)


def _renew(session: Session, job_id: str) -> None:
    token = service.get_job(session, job_id).claim_token
    service.renew_claim(session, job_id, token=token, lease_seconds=LEASE_SECONDS, now=ATTEMPT_AT)


# target state -> (the way the analyst makes that move, other ways that must refuse what the table forbids)
MOVERS: dict[JobState, tuple[Mover, tuple[Mover, ...]]] = {
    JobState.RELEASING: (lambda s, j: _claim(s, j, ATTEMPT_AT),
                         (lambda s, j: _claim(s, j, ATTEMPT_AT, confirm=False), _renew)),
    JobState.PRINTED: (lambda s, j: _finish(s, j, ATTEMPT_AT, "printed"), ()),
    JobState.HELD: (lambda s, j: _finish(s, j, ATTEMPT_AT, "held", "printer-unreachable"), (_interrupt,)),
    JobState.FAILED: (lambda s, j: _finish(s, j, ATTEMPT_AT, "failed", "print-failed"), ()),
    JobState.EXPIRED: (_expire, ()),
    JobState.DELETED: (lambda s, j: service.delete_job(s, j, user="alice", now=ATTEMPT_AT), ()),
}


def _row(session: Session, job_id: str) -> tuple[Any, ...]:
    job = service.get_job(session, job_id)
    return job.state, job.state_reason, job.claim_token, job.claimed_by, job.lease_expires_at, job.updated_at


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    upgrade(db_url, PG_PASSWORD)
    database = Database(db_url, PG_PASSWORD)
    yield database
    database.dispose()


def test_every_state_and_target_is_covered() -> None:
    assert {source.state for source in SOURCES} == set(JobState) == set(MOVERS) == set(ALLOWED)


@pytest.mark.parametrize("source", SOURCES, ids=[source.name for source in SOURCES])
def test_transitions_from_each_state_follow_the_table(database: Database, source: Source) -> None:
    """Allowed moves succeed through the analyst's own way of making them; forbidden ones are refused
    (an error, or nothing changed) by every way there is, and each in a savepoint rolled back after."""
    wrong: list[str] = []
    with database.session(write=True) as session:
        for target, (mover, others) in MOVERS.items():
            allowed = can_move(source.state, target, source.reason)
            for index, move in enumerate((mover, *others) if not allowed else (mover,)):
                savepoint = session.begin_nested()
                try:
                    job_id = f"{source.name}-{target}-{index}"
                    reg = service.registration({"id": job_id, "owner": "alice", "locations": ["c1"]})
                    service.register_job(session, reg, now=T0, lifetime=LIFETIME)
                    source.setup(session, job_id)
                    before = _row(session, job_id)
                    assert before[:2] == (source.state, source.reason), f"setup of {source.name}: {before}"
                    try:
                        move(session, job_id)
                        error: Exception | None = None
                    except Conflict as exc:
                        error = exc
                    after = _row(session, job_id)
                    moved = after[0] == target and after[-1] == ATTEMPT_AT
                    if allowed and (error is not None or not moved):
                        wrong.append(f"{source.name} -> {target} is allowed but was refused ({error or after})")
                    if not allowed and after != before:
                        wrong.append(f"{source.name} -> {target} is forbidden but mover {index} changed "
                                     f"{before} to {after}")
                finally:
                    savepoint.rollback()
    assert wrong == []
