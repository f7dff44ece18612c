"""Job states and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    HELD = "held"            # durable, waiting for its owner at a printer
    RELEASING = "releasing"  # claimed by one collector under a lease; bytes may be on their way
    PRINTED = "printed"      # delivered (raw) or completed (IPP); copies deleted
    FAILED = "failed"        # the printer took it but reported failure; kept for the user to see
    EXPIRED = "expired"      # held past its lifetime; copies deleted
    DELETED = "deleted"      # removed by its owner or an operator; copies deleted


FINAL_STATES = frozenset({JobState.PRINTED, JobState.EXPIRED, JobState.DELETED})

ALLOWED = {
    JobState.HELD: frozenset({JobState.RELEASING, JobState.EXPIRED, JobState.DELETED}),
    # A release that did not deliver returns the job to held; a lease that lapses does the same.
    JobState.RELEASING: frozenset({JobState.PRINTED, JobState.HELD, JobState.FAILED}),
    JobState.FAILED: frozenset({JobState.RELEASING, JobState.DELETED, JobState.EXPIRED}),
    JobState.PRINTED: frozenset(),
    JobState.EXPIRED: frozenset(),
    JobState.DELETED: frozenset(),
}


def can_move(current: JobState | str, new: JobState | str) -> bool:
    """True when a job in `current` may move to `new`."""
    return JobState(new) in ALLOWED[JobState(current)]
