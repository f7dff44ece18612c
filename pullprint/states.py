"""Job states, the reasons both services act on, and the transitions allowed between states."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    HELD = "held"            # durable, waiting for its owner at a printer
    RELEASING = "releasing"  # claimed by one collector under a lease; bytes may be on their way
    PRINTED = "printed"      # delivered (raw) or completed (IPP); copies deleted
    FAILED = "failed"        # the printer took it but reported failure; kept for the user to see
    EXPIRED = "expired"      # held past its lifetime; copies deleted
    DELETED = "deleted"      # removed by its owner or an operator; copies deleted


# The state_reason of a job whose releaser's lease lapsed: back to held, its claim token kept. Only
# the user's confirmation releases it again (some of it may be lying in a tray); until someone claims
# it, the claim it was interrupted under may still renew or finish it (its releaser was slow, not
# dead). The analyst's refusal of a plain claim of such a job carries the same word as its code.
INTERRUPTED = "interrupted"

FINAL_STATES = frozenset({JobState.PRINTED, JobState.EXPIRED, JobState.DELETED})
# The states a user still sees at a terminal.
OPEN_STATES = tuple(state for state in JobState if state not in FINAL_STATES)

# current state -> the states it may move to. The analyst's compare-and-set UPDATEs take their
# `WHERE state IN (…)` from here (see the derived sets below); tests/analyst/test_transitions.py
# drives every pair through the analyst's service functions against this table.
ALLOWED: dict[JobState, tuple[JobState, ...]] = {
    JobState.HELD: (JobState.RELEASING, JobState.EXPIRED, JobState.DELETED),
    # The end of a release under its claim: printed, or back to held / failed with a reason; a lease
    # that lapses goes back to held too. Releasing again: a confirmed claim takes over a lapsed lease.
    JobState.RELEASING: (JobState.PRINTED, JobState.HELD, JobState.FAILED, JobState.RELEASING),
    JobState.FAILED: (JobState.RELEASING, JobState.DELETED, JobState.EXPIRED),
    JobState.PRINTED: (),
    JobState.EXPIRED: (),
    JobState.DELETED: (),
}


def can_move(current: JobState | str, new: JobState | str, reason: str = "") -> bool:
    """True when a job in `current` (with `reason`) may move to `new`.

    A job held as `INTERRUPTED` is still under the claim it was interrupted from, so it may also
    move wherever a releasing job may.
    """
    current, new = JobState(current), JobState(new)
    if current == JobState.HELD and reason == INTERRUPTED and new in ALLOWED[JobState.RELEASING]:
        return True
    return new in ALLOWED[current]


def sources(new: JobState) -> tuple[JobState, ...]:
    """The states a job may move to `new` from, in declaration order."""
    return tuple(state for state in JobState if new in ALLOWED[state])


# A claim starts from these (a releasing job only by taking over a lapsed lease, on confirmation).
RELEASABLE = tuple(state for state in sources(JobState.RELEASING) if state != JobState.RELEASING)
# What a release under its claim ends in.
FINISH_STATES = tuple(state for state in ALLOWED[JobState.RELEASING] if state != JobState.RELEASING)
DELETABLE = sources(JobState.DELETED)
EXPIRABLE = sources(JobState.EXPIRED)
