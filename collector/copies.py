"""Job copies across collectors: replicate, commit, discard, pull; reconcile, repair, orphans, expiry, hand-over."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from collector import journal
from collector.analyst_client import AnalystUnavailable
from collector.clock import now_iso, younger_than
from collector.membership import Member
from collector.node import Node
from collector.peers import PeerUnreachable
from pullprint.errors import PullprintError, Unavailable
from pullprint.states import FINAL_STATES, JobState
from pullprint.wire import JobSubmission

log = logging.getLogger(__name__)
EXPIRY_SLACK = timedelta(minutes=5)
LOOKUP_BATCH = 500  # lets the analyst expire a job (and say so) before its files go


def replicate(node: Node, job: JobSubmission, open_sealed: Callable[[], BinaryIO] | None = None,
              exclude: Iterable[str] = (), wanted: int | None = None, staying: bool = True) -> list[str]:
    """Copy a job to live peers until it has `replicas` copies (or `wanted` more); returns the peers that now hold it.

    Peers of the same site are tried first, in random order so copies spread evenly. With no live
    peer at all the job stays under-replicated (`submit` acknowledges it only when
    `min_copies_to_ack` allows, and the repair copies it once a peer is back); with live peers that
    all fail, raise Unavailable: the backend retries through the load balancer. A node handing its
    jobs over before it retires is not `staying`: the copies it makes do not name it as a holder.
    """
    wanted = max(0, node.config.replicas - 1) if wanted is None else wanted
    if wanted == 0:
        return []
    peers = [p for p in node.membership.peers().values() if p.id not in set(exclude)]
    random.shuffle(peers)
    peers.sort(key=lambda p: p.site != node.config.site)
    holders: list[str] = []
    for peer in peers:
        if len(holders) >= wanted:
            break
        # Each copy knows where the others are, so whichever holder prints can delete them all.
        locations = sorted({*job.locations, *([node.id] if staying else []), *holders, peer.id})
        try:
            with (open_sealed or (lambda: node.spool.open_sealed(job.id)))() as sealed:
                # Provisional until the job is registered (or journalled): a copy left behind by an
                # intake that died before that was never acknowledged, and must never be printed.
                node.peers.store_replica(peer, job.id,
                                         {**job.to_json(), "locations": locations, "provisional": True}, sealed)
            holders.append(peer.id)
        except (PeerUnreachable, PullprintError) as exc:
            log.warning("replica of %s to %s failed: %s", job.id, peer.id, exc.message)
    if peers and not holders:
        raise Unavailable("replication-failed", "no peer collector could store a copy; try again")
    return holders


def copies_to_ack(node: Node) -> int:
    """How many copies (this node's included) must be fsynced before a job is acknowledged."""
    return max(1, min(node.config.min_copies_to_ack, node.config.replicas))


def commit_replicas(node: Node, job_id: str, locations: Iterable[str]) -> None:
    """Tell the peers holding a job's copies that it is registered: their copies are real now.

    Best effort: a peer that misses this commits its copy itself when it reconciles with the analyst.
    """
    _on_live_peers(node, job_id, locations, node.peers.commit, logging.INFO,
                   "commit of %s on %s deferred to its reconcile: %s")


def discard_copies(node: Node, job_id: str, locations: Iterable[str]) -> None:
    """Delete a printed job's copies here and on every peer that has one.

    A peer that is away (dead, or restarting and not serving yet) keeps its copy for now: that is
    journalled here (`journal.COPY_LEFT`) before the job is recorded printed. The journal's replay
    shreds the copy once the peer is back, and until then every Redis restart gets the job's
    `gone` mark back from this journal (`site_claims.reassert_journal_claims`), so the leftover copy
    is never offered offline (the fault suite's long run printed 11 jobs twice that way)."""
    node.spool.delete(job_id)
    members = node.membership.peers()
    for location in sorted(set(locations) - {node.id}):
        peer = members.get(location)
        try:
            if peer is None:
                raise PeerUnreachable("peer-away", f"{location} is not a live member")
            node.peers.delete(peer, job_id)
        except (PeerUnreachable, PullprintError) as exc:
            log.warning("could not delete copy of %s on %s (%s): shredded when it is back", job_id, location,
                        exc.message)
            node.journal.append(journal.COPY_LEFT, {"id": job_id, "collector": location, "at": now_iso()})


def shred_left_copy(node: Node, job_id: str, collector: str, at: str) -> None:
    """The replay of a COPY_LEFT entry: delete the copy on `collector`; Deferred while it is away.
    After a job's lifetime the entry goes anyway: the peer's own expiry has shredded the copy by then."""
    if not younger_than(at, seconds=node.config.job_lifetime_hours * 3600):
        return
    peer = node.membership.peers().get(collector)
    if peer is None:
        raise journal.Deferred(job_id)
    try:
        node.peers.delete(peer, job_id)
    except (PeerUnreachable, PullprintError) as exc:
        log.info("copy of %s on %s not shredded yet: %s", job_id, collector, exc.message)
        raise journal.Deferred(job_id) from None


def _on_live_peers(node: Node, job_id: str, locations: Iterable[str], call: Callable[[Member, str], None],
                   level: int, failure: str) -> None:
    """`call(peer, job_id)` on each live peer among `locations`; a failure is logged, not raised."""
    members = node.membership.peers()
    for location in locations:
        if location != node.id and location in members:
            try:
                call(members[location], job_id)
            except (PeerUnreachable, PullprintError) as exc:
                log.log(level, failure, job_id, location, exc.message)


def pull_copy(node: Node, job_id: str, holder: Member) -> None:
    """Fetch a job's sealed file from `holder` into this node's spool, verified."""
    meta, chunks = node.peers.fetch(holder, job_id)

    class _Reader:
        def __init__(self) -> None:
            self._it, self._buf = iter(chunks), b""

        def read(self, n: int = -1) -> bytes:
            while n < 0 or len(self._buf) < n:
                try:
                    self._buf += next(self._it)
                except StopIteration:
                    break
            out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
            return out

    node.spool.store_replica(job_id, _Reader(), {**meta, "locations": [*meta.get("locations", []), node.id]},
                             limit=node.config.max_job_bytes)
    try:
        node.analyst.add_location(job_id, node.id)
    except AnalystUnavailable:
        node.journal.append(journal.LOCATION, {"id": job_id, "collector": node.id})


def printable_here(node: Node, job_id: str, *, offline: bool) -> bool:
    """This node has a copy it may print: any copy under the analyst's claim; offline (the analyst
    cannot vouch for the rest), only copies of acknowledged jobs, never provisional ones."""
    if not node.spool.has(job_id):
        return False
    return not (offline and node.spool.meta(job_id).get("provisional"))


def held_here(node: Node, user: str) -> list[dict[str, Any]]:
    """The committed copies of `user`'s jobs on this node, as held jobs (the degraded-mode listing)."""
    return [{**meta, "state": JobState.HELD, "locations": sorted(set(meta.get("locations", [])) | {node.id})}
            for meta in node.spool.jobs_of(user)]


def reconcile(node: Node) -> dict[str, int]:
    """Square this node's spool with the analyst, job by job.

    - printed, deleted, expired → the copy goes (a node that was away never serves a stale copy);
    - known and live → the copy is real (committed) and learns the current locations;
    - unknown, and in this node's journal → kept: the registration is on its way;
    - unknown, provisional, older than `provisional_grace_seconds` → deleted: its intake died
      before registering, so it was never acknowledged;
    - unknown and committed → registered from here ("adopted"): the node that registered it may
      have died with the registration still in its journal, and this copy is an acknowledged job.

    A node that comes back after being away runs this before it serves.
    """
    counts = {"kept": 0, "dropped": 0, "adopted": 0}
    journalled = {str(e["payload"].get("id")) for e in node.journal.entries()}
    local = node.spool.job_ids()
    for start in range(0, len(local), LOOKUP_BATCH):
        batch = local[start:start + LOOKUP_BATCH]
        try:
            known = node.analyst.lookup(batch)
        except (AnalystUnavailable, PullprintError):
            counts["kept"] += len(local) - start  # the analyst cannot say: keep everything, ask again later
            break
        for job_id in batch:
            try:
                meta = node.spool.placement(job_id)  # no decryption for what every copy needs
            except PullprintError:
                continue  # deleted meanwhile
            job = known.get(job_id)
            if job is None:
                counts[_unknown_copy(node, job_id, meta, journalled)] += 1
            elif job["state"] in FINAL_STATES:
                node.spool.delete(job_id)
                counts["dropped"] += 1
            else:
                node.spool.update_meta(job_id, locations=job.get("locations", []), provisional=False)
                counts["kept"] += 1
    for job_id in node.spool.spool_files_without_meta():
        node.spool.delete(job_id)  # a crash between the two renames: never acknowledged
        counts["dropped"] += 1
    return counts


def _unknown_copy(node: Node, job_id: str, meta: dict[str, Any], journalled: set[str]) -> str:
    """What to do with a copy of a job the analyst does not know; returns the count it goes to."""
    if job_id in journalled:
        return "kept"
    if meta.get("provisional"):
        if not younger_than(meta.get("submitted_at", ""), seconds=node.config.provisional_grace_seconds):
            node.spool.delete(job_id)
            return "dropped"
        return "kept"
    try:
        job = JobSubmission.from_json(node.spool.meta(job_id))
        registered, _ = node.analyst.register_job(replace(job, locations=tuple(sorted({*job.locations, node.id}))))
    except PullprintError as exc:  # unreachable, or refused: keep the copy, ask again next time
        log.warning("could not register unknown job %s from this node's copy: %s", job_id, exc.code)
        return "kept"
    if registered["id"] != job_id:
        node.spool.delete(job_id)  # the same CUPS job was registered under another id: that one stands
        return "dropped"
    log.warning("job %s was unknown to the analyst; registered it from this node's copy", job_id)
    return "adopted"


@dataclass
class LastScan:
    """What the last full repair scan saw, so an unchanged cluster is not rescanned every few seconds."""

    view: frozenset[str] = frozenset()
    at: float = float("-inf")


def repair_replicas(node: Node, absent_since: dict[str, float], grace_seconds: float,
                    scan: LastScan | None = None) -> int:
    """Copy again every job this node holds that has fewer live copies than wanted.

    A holder that vanished counts as holding its copies for `grace_seconds` (a restart is not a
    loss); after that its copies are made again from the survivors. `absent_since` carries, from
    one call to the next, when each missing holder was first seen gone.
    """
    members = node.membership.peers()
    now = time.monotonic()
    for back in [c for c in absent_since if c in members]:
        del absent_since[back]
    # Reading every job's metadata is O(spool): do it only when something can have changed —
    # membership moved, a vanished holder is waiting out its grace, or a minute has passed.
    if scan is not None:
        view = frozenset(members)
        if not absent_since and view == scan.view and now - scan.at < 60:
            return 0
        scan.view, scan.at = view, now
    repaired = 0
    for job_id in node.spool.job_ids():
        try:
            meta = node.spool.placement(job_id)
        except PullprintError:
            continue
        if meta.get("provisional"):
            continue  # not a job (yet): its intake may have died before registering it
        holders = {node.id}
        for location in meta.get("locations", []):
            if location == node.id or location in members:
                holders.add(location)
            elif now - absent_since.setdefault(location, now) < grace_seconds:
                holders.add(location)  # gone only briefly: still counted
        if len(holders) >= node.config.replicas:
            continue
        # Only the live holder with the smallest id repairs, so two survivors don't both copy.
        if min(h for h in holders if h == node.id or h in members) != node.id:
            continue
        copy_started = time.monotonic()
        try:
            added = replicate(node, JobSubmission.from_json(node.spool.meta(job_id)), exclude=holders)
        except PullprintError:
            added = []
        # A dead node leaves thousands of jobs to copy again on the survivors, which are now
        # serving its terminals too: copy at a measured pace rather than at full CPU.
        time.sleep((time.monotonic() - copy_started) * node.config.repair_rest_ratio)
        if len(holders) + len(added) < node.config.replicas and scan is not None:
            scan.at = float("-inf")  # still short (a peer not serving yet?): look again next round
        for peer in added:
            try:
                node.analyst.add_location(job_id, peer)
            except AnalystUnavailable:
                node.journal.append(journal.LOCATION, {"id": job_id, "collector": peer})
            except PullprintError as exc:  # the job ended meanwhile; reconcile drops the copies
                log.info("copy of %s on %s not recorded: %s", job_id, peer, exc.code)
        if added:
            node.spool.update_meta(job_id, locations=sorted(set(meta.get("locations", [])) | set(added)))
            repaired += 1
            log.info("job %s copied again to %s", job_id, ",".join(added))
    return repaired


def sweep_orphans(node: Node) -> dict[str, int]:
    """Find orphans both ways: records that name this node but have no file here, and expired files."""
    found = {"records_without_file": 0, "expired_files": 0}
    try:
        for job in node.analyst.jobs(location=node.id):  # page by page: a node may hold a million
            if job.get("state") in FINAL_STATES or node.spool.has(job["id"]):
                continue
            log.warning("job %s is recorded on %s but its file is missing: forgetting this copy", job["id"], node.id)
            try:
                node.analyst.remove_location(job["id"], node.id)
                found["records_without_file"] += 1
            except (AnalystUnavailable, PullprintError):
                pass
    except (AnalystUnavailable, PullprintError):
        pass  # the rest of the listing waits for the next sweep
    now = datetime.now(UTC)
    for job_id in node.spool.job_ids():
        try:
            expires = datetime.fromisoformat(node.spool.placement(job_id).get("expires_at", ""))
        except (PullprintError, ValueError):
            continue
        if now - expires > EXPIRY_SLACK:
            node.spool.delete(job_id)  # the analyst expires the record; the file must not outlive it
            found["expired_files"] += 1
    return found


def expire_jobs(node: Node) -> int:
    try:
        expired = node.analyst.expire()
    except AnalystUnavailable:
        return 0
    gone = 0
    for job in expired:
        gone += node.spool.delete(job["id"])
    return gone


def hand_over(node: Node) -> dict[str, int]:
    """One pass of a retirement: give every job this collector holds to the others, then drop its copy.

    Each job gets `replicas` copies on other live collectors (made from this copy where it has fewer,
    committed at once), the analyst learns where they are and that this node holds none, and this
    node's copy goes. Left for a later pass: a job being printed, one the analyst does not know yet
    (its registration still in a journal), and one the others cannot hold `replicas` copies of
    (too few collectors would be left). Returns the counts of each outcome.

    The caller has marked the spool retiring (`SpoolStore.mark_retiring`) first, so that no new job
    or copy lands here meanwhile. Raises AnalystUnavailable: without the analyst nothing is handed over.
    """
    counts = {"handed_over": 0, "already_elsewhere": 0, "dropped": 0, "left": 0}
    members = node.membership.peers()
    local = node.spool.job_ids()
    for start in range(0, len(local), LOOKUP_BATCH):
        batch = local[start:start + LOOKUP_BATCH]
        known = node.analyst.lookup(batch)
        for job_id in batch:
            counts[_hand_over_one(node, job_id, known.get(job_id), members)] += 1
    return counts


def _hand_over_one(node: Node, job_id: str, job: dict[str, Any] | None, members: dict[str, Member]) -> str:
    if job is None or job["state"] == JobState.RELEASING:
        return "left"
    if job["state"] in FINAL_STATES:
        node.spool.delete(job_id)
        return "dropped"
    others = sorted(c for c in job.get("locations", []) if c != node.id and c in members)
    added: list[str] = []
    if len(others) < node.config.replicas:
        try:
            meta = node.spool.meta(job_id)
        except PullprintError:
            return "dropped"  # printed and deleted meanwhile
        submission = replace(JobSubmission.from_json(meta), locations=tuple(others))
        try:
            added = replicate(node, submission, exclude={node.id, *others}, wanted=node.config.replicas - len(others),
                              staying=False)
        except PullprintError:
            added = []
        for peer in added:
            node.analyst.add_location(job_id, peer)
        commit_replicas(node, job_id, added)
        if len(others) + len(added) < node.config.replicas:
            log.warning("job %s has %d copies on other collectors, not %d: this node keeps its copy", job_id,
                        len(others) + len(added), node.config.replicas)
            return "left"
    node.analyst.remove_location(job_id, node.id)
    node.spool.delete(job_id)
    return "handed_over" if added else "already_elsewhere"
