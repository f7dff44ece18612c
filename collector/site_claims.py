"""Site claims: the Redis mutex every release takes, which alone lets a collector release while the analyst is away.

The story, once:

- **Take.** Every release, online or offline, first takes the job's site claim
  (`keys.offline_claim`, `SET NX`, valued with the collector's id). A job marked gone
  (`keys.job_gone`: printed) cannot be taken. A user who confirms an interrupted release takes the
  claim over (`force`); the analyst's compare-and-set decides then. Online, the analyst's claim
  (fencing token, lease) is the right to send and the site claim tells offline releasers to keep
  off; offline (the analyst refused the connection, or the site marked it down), the site claim
  alone is that right, and `collector/release.py` journals an offline claim before the first
  byte goes out.
- **Release.** A release's outcome settles its claim (`settle`): a printed job is marked gone (its
  claim stays), a job back to held frees its claim, and an online failure frees it too; an offline print or
  failure keeps it until the journal replay has told the analyst (`collector/replay.py` frees it
  then), and a releaser that dies leaves it taken, so no offline release prints the job while the
  analyst may still see it releasing. An interrupted job keeps its claim: only the user's
  confirmation releases it again.
- **Restore after a Redis restart.** Redis restarted empty has forgotten every claim. Each
  collector notices at its heartbeat (`ClaimKeeper`): the site's claims-ready mark
  (`keys.site_claims_ready`) is missing.
- **Journal reassertion.** At every beat until the mark is back, each collector puts back the
  claims of its journal: offline releases not replayed yet, offline claims without an outcome,
  and `gone` for what they printed (`reassert_journal_claims`).
- **The claims-ready mark.** Once every collector has had two beats to do that, one that reaches
  the analyst claims every job the analyst sees releasing or interrupted
  (`restore_analyst_claims`) and sets the mark. Until the mark is back no collector releases
  offline (`ready` is False: the answer is analyst-unreachable); an offline release is only as
  safe as the claims Redis holds.
"""

from __future__ import annotations

import contextlib
import logging
import time

from collector import journal
from collector.node import Node
from pullprint import keys
from pullprint.states import INTERRUPTED, JobState

log = logging.getLogger(__name__)


def _lifetime(node: Node) -> int:
    return int(node.config.job_lifetime_hours * 3600)


def take(node: Node, job_id: str, ttl_seconds: float, *, force: bool = False) -> bool | None:
    """Take the job's site claim. True: taken; False: someone else has it (or the job is gone); None:
    Redis cannot say."""
    try:
        if node.redis.exists(keys.job_gone(job_id)):
            return False
        return bool(node.redis.set(keys.offline_claim(job_id), node.id, nx=not force, ex=max(1, int(ttl_seconds))))
    except Exception:  # noqa: BLE001
        return None


def release(node: Node, job_id: str) -> None:
    """Free the job's site claim, so that it can be released again."""
    with contextlib.suppress(Exception):
        node.redis.delete(keys.offline_claim(job_id))


def settle(node: Node, job_id: str, state: str, *, offline: bool) -> None:
    """What a release's outcome does to its site claim (see the module's docstring)."""
    if state == JobState.PRINTED:
        with contextlib.suppress(Exception):
            node.redis.set(keys.job_gone(job_id), JobState.PRINTED, ex=_lifetime(node))
    elif state == JobState.HELD or not offline:
        # Free the site claim so the job can be released again (an offline print keeps it until replayed).
        release(node, job_id)


def ready(node: Node) -> bool:
    """Does Redis hold every claim the site needs to decide offline releases (the claims-ready mark)?"""
    try:
        return bool(node.redis.exists(keys.site_claims_ready(node.config.site)))
    except Exception:  # noqa: BLE001
        return False


def claimed_or_gone(node: Node, job_ids: list[str]) -> set[str]:
    """The jobs among `job_ids` that are claimed or gone: an offline listing must not offer them."""
    if not job_ids:
        return set()
    try:
        found = node.redis.mget([keys.job_gone(i) for i in job_ids] + [keys.offline_claim(i) for i in job_ids])
    except Exception:  # noqa: BLE001
        found = [None] * (2 * len(job_ids))
    return {i for i, g, c in zip(job_ids, found[:len(job_ids)], found[len(job_ids):], strict=True) if g or c}


def reassert_journal_claims(node: Node) -> int:
    """Put this node's not-yet-replayed releases back into Redis (it restarted empty): their site
    claims, and `gone` for what they printed. Returns how many claims were put back."""
    restored = 0
    lifetime = _lifetime(node)
    entries = node.journal.entries()
    settled = journal.settled_offline_claims(entries)
    with node.redis.pipeline(transaction=False) as pipe:
        for entry in entries:
            kind, payload = entry.get("kind"), entry.get("payload", {})
            if kind not in (journal.OFFLINE_CLAIM, journal.OFFLINE_RELEASE, journal.FINISH) or not payload.get("id"):
                continue
            if kind == journal.OFFLINE_RELEASE or (kind == journal.OFFLINE_CLAIM and payload["id"] not in settled):
                pipe.set(keys.offline_claim(payload["id"]), node.id, nx=True, ex=lifetime)
                restored += 1
            if payload.get("state") == JobState.PRINTED:
                pipe.set(keys.job_gone(payload["id"]), JobState.PRINTED, ex=lifetime)
        pipe.execute()
    return restored


def restore_analyst_claims(node: Node) -> int:
    """Claim, site-wide, every job the analyst sees being released or interrupted, so that no
    offline release prints one of them after Redis forgot their claims."""
    lifetime = _lifetime(node)
    jobs = node.analyst.jobs(state=JobState.RELEASING, limit="10000")
    jobs += [job for job in node.analyst.jobs(state=JobState.HELD, reason=INTERRUPTED, limit="10000")
             if job.get("state_reason") == INTERRUPTED]  # (an analyst without the filter sends them all)
    with node.redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.set(keys.offline_claim(job["id"]), "restored", nx=True, ex=lifetime)
        pipe.execute()
    return len(jobs)


class ClaimKeeper:
    """Run at every heartbeat: notices that Redis restarted empty (the claims-ready mark is missing)
    and puts the site's claims back, journal first, then the analyst's, then the mark."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.missing_since: float | None = None

    def keep(self, *, analyst_reachable: bool) -> None:
        node, cfg = self.node, self.node.config
        try:
            if node.redis.exists(keys.site_claims_ready(cfg.site)):
                self.missing_since = None
                return
            now = time.monotonic()
            if self.missing_since is None:
                self.missing_since = now
            reassert_journal_claims(node)
            if analyst_reachable and now - self.missing_since >= 2 * cfg.heartbeat_seconds:
                restored = restore_analyst_claims(node)
                node.redis.set(keys.site_claims_ready(cfg.site), node.id)
                log.info("site release claims restored in redis (%d from the analyst)", restored)
        except Exception as exc:  # noqa: BLE001 - Redis or the analyst away: try again next beat
            log.warning("cannot restore the site's release claims yet: %s", exc)

