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
- **Sealed.** Every value here (a claim's holder, `gone`, the claims-ready mark) carries a MAC
  only collectors can make (`node.seals`, collector/state_mac.py). A planted `gone` or mark is
  ignored; a planted claim is replaced by a real one (compare-and-set on the planted value), and
  never counts as anyone's right to print (`holder`, which a direct print checks). A Redis writer
  can still delete claims or race a planted one in: that denies service, it never prints a job.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from collector import journal
from collector.node import Node
from pullprint import keys
from pullprint.errors import PullprintError
from pullprint.states import INTERRUPTED, JobState

log = logging.getLogger(__name__)


# Replace a planted (unverifiable) claim, and only that value, by a real one.
_REPLACE = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) else return false end")


def _lifetime(node: Node) -> int:
    return int(node.config.job_lifetime_hours * 3600)


def _sealed(node: Node, key: str, value: str, ttl: int) -> str:
    return node.seals.seal(key, value, ttl_seconds=ttl)


def is_gone(node: Node, job_id: str) -> bool:
    """Has a collector marked the job printed (a planted mark does not count)?"""
    key = keys.job_gone(job_id)
    return node.seals.valid(key, node.redis.get(key))


def holder(node: Node, job_id: str) -> tuple[str, str] | None:
    """Who holds the job's site claim and for which printer, as a collector sealed it (None: nobody,
    Redis cannot say, or planted). A claim restored from the analyst names no printer."""
    key = keys.offline_claim(job_id)
    try:
        value = node.seals.open(key, node.redis.get(key))
    except Exception:  # noqa: BLE001
        return None
    if value is None:
        return None
    collector, _, printer = value.partition(" ")
    return collector, printer


def confirm(node: Node, job_id: str, *, user: str, token: int, offline: bool, printer_id: str,
            caller: str | None) -> str | None:
    """Before a holder prints for another collector (`caller`, from its certificate): is that claim real?

    Online, the analyst must show the job releasing under exactly this claim (token, printer, owner,
    claimant); offline (the claim says so, and the analyst is away or still sees the job held), the
    site claim in Redis, sealed by a collector, must name the caller and the printer. None: confirmed;
    otherwise the reason it is refused.
    """
    from collector.analyst_client import AnalystUnavailable

    try:
        job: dict[str, Any] | None = node.analyst.job(job_id)
    except AnalystUnavailable:
        job = None
    except PullprintError:
        return "claim-not-confirmed"
    if job is not None and job.get("owner") != user:
        return "claim-not-confirmed"
    if job is not None and not offline:
        claim = job.get("claim")
        claim = claim if isinstance(claim, dict) else None
        if (job.get("state") == JobState.RELEASING and claim is not None and claim.get("token") == token
                and claim.get("printer") == printer_id and (caller is None or claim.get("by") == caller)):
            return None
        return "claim-not-confirmed"
    if not offline or (job is not None and job.get("state") != JobState.HELD):
        return "claim-not-confirmed"
    taken = holder(node, job_id)
    if taken is None or taken[1] != printer_id or (caller is not None and taken[0] != caller):
        return "claim-not-confirmed"
    return None


def take(node: Node, job_id: str, ttl_seconds: float, *, force: bool = False, printer: str = "") -> bool | None:
    """Take the job's site claim. True: taken; False: someone else has it (or the job is gone); None:
    Redis cannot say."""
    try:
        if is_gone(node, job_id):
            return False
        key, ttl = keys.offline_claim(job_id), max(1, int(ttl_seconds))
        value = _sealed(node, key, f"{node.id} {printer}".rstrip(), ttl)
        if node.redis.set(key, value, nx=not force, ex=ttl):
            return True
        present = node.redis.get(key)
        if present is None or node.seals.valid(key, present):
            return False  # a collector holds it (or it just went: the next try may take it)
        # Planted: it must not block the release; take the claim over from exactly that value.
        return bool(node.redis.register_script(_REPLACE)(keys=[key], args=[present, value, ttl]))
    except Exception:  # noqa: BLE001
        return None


def release(node: Node, job_id: str) -> None:
    """Free the job's site claim, so that it can be released again."""
    with contextlib.suppress(Exception):
        node.redis.delete(keys.offline_claim(job_id))


# Delete the claim only while it still holds exactly the value read (compare-and-delete).
_RELEASE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


def release_own(node: Node, job_id: str, printer: str = "") -> None:
    """Free the job's site claim only if it is this release's own (sealed by this node for `printer`).

    A release that gives up before printing frees what it took, never another releaser's claim: a
    take Redis could not answer (None: timed out, so it may or may not have set the claim) finds a
    claim that is not its own when the job's releaser died mid-release, and that claim must stay
    (the job is interrupted; freeing it would let an offline release print it a second time).
    """
    key = keys.offline_claim(job_id)
    with contextlib.suppress(Exception):
        present = node.redis.get(key)
        if present is not None and node.seals.open(key, present) == f"{node.id} {printer}".rstrip():
            node.redis.register_script(_RELEASE_IF)(keys=[key], args=[present])


def settle(node: Node, job_id: str, state: str, *, offline: bool) -> None:
    """What a release's outcome does to its site claim (see the module's docstring)."""
    if state == JobState.PRINTED:
        with contextlib.suppress(Exception):
            key, ttl = keys.job_gone(job_id), _lifetime(node)
            node.redis.set(key, _sealed(node, key, JobState.PRINTED, ttl), ex=ttl)
    elif state == JobState.HELD or not offline:
        # Free the site claim so the job can be released again (an offline print keeps it until replayed).
        release(node, job_id)


def ready(node: Node) -> bool:
    """Does Redis hold every claim the site needs to decide offline releases (the claims-ready mark)?"""
    key = keys.site_claims_ready(node.config.site)
    try:
        return node.seals.valid(key, node.redis.get(key))
    except Exception:  # noqa: BLE001
        return False


def claimed_or_gone(node: Node, job_ids: list[str]) -> set[str]:
    """The jobs among `job_ids` that are claimed or gone: an offline listing must not offer them."""
    if not job_ids:
        return set()
    names = [keys.job_gone(i) for i in job_ids] + [keys.offline_claim(i) for i in job_ids]
    try:
        found = node.redis.mget(names)
    except Exception:  # noqa: BLE001
        found = [None] * (2 * len(job_ids))
    real = [node.seals.valid(name, value) for name, value in zip(names, found, strict=True)]
    return {i for i, g, c in zip(job_ids, real[:len(job_ids)], real[len(job_ids):], strict=True) if g or c}


def reassert_journal_claims(node: Node) -> int:
    """Put this node's not-yet-replayed releases back into Redis (it restarted empty): their site
    claims, and `gone` for what they printed and for what a peer still holds a copy of (COPY_LEFT).
    Returns how many claims were put back."""
    restored = 0
    lifetime = _lifetime(node)
    entries = node.journal.entries()
    settled = journal.settled_offline_claims(entries)
    with node.redis.pipeline(transaction=False) as pipe:
        for entry in entries:
            kind, payload = entry.get("kind"), entry.get("payload", {})
            if kind not in (journal.OFFLINE_CLAIM, journal.OFFLINE_RELEASE, journal.FINISH,
                            journal.COPY_LEFT) or not payload.get("id"):
                continue
            if kind == journal.OFFLINE_RELEASE or (kind == journal.OFFLINE_CLAIM and payload["id"] not in settled):
                claim = keys.offline_claim(payload["id"])
                value = f"{node.id} {payload.get('printer', '')}".rstrip()
                pipe.set(claim, _sealed(node, claim, value, lifetime), nx=True, ex=lifetime)
                restored += 1
            if payload.get("state") == JobState.PRINTED or kind == journal.COPY_LEFT:
                gone = keys.job_gone(payload["id"])
                pipe.set(gone, _sealed(node, gone, JobState.PRINTED, lifetime), ex=lifetime)
        pipe.execute()
    return restored


def restore_analyst_claims(node: Node) -> int:
    """Claim, site-wide, every job the analyst sees being released or interrupted, so that no
    offline release prints one of them after Redis forgot their claims."""
    lifetime = _lifetime(node)
    jobs = list(node.analyst.jobs(state=JobState.RELEASING))
    jobs += [job for job in node.analyst.jobs(state=JobState.HELD, reason=INTERRUPTED)
             if job.get("state_reason") == INTERRUPTED]  # (an analyst without the filter sends them all)
    with node.redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            claim = keys.offline_claim(job["id"])
            pipe.set(claim, _sealed(node, claim, "restored", lifetime), nx=True, ex=lifetime)
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
            if ready(node):
                self.missing_since = None
                return
            now = time.monotonic()
            if self.missing_since is None:
                self.missing_since = now
            reassert_journal_claims(node)
            if analyst_reachable and now - self.missing_since >= 2 * cfg.heartbeat_seconds:
                restored = restore_analyst_claims(node)
                mark = keys.site_claims_ready(cfg.site)
                node.redis.set(mark, node.seals.seal(mark, node.id))
                log.info("site release claims restored in redis (%d from the analyst)", restored)
        except Exception as exc:  # noqa: BLE001 - Redis or the analyst away: try again next beat
            log.warning("cannot restore the site's release claims yet: %s", exc)

