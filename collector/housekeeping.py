"""The collector's background duties: heartbeat, journal replay, cache sync, reconciliation, expiry and repair."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collector import journal, membership, site_claims, status
from collector.analyst_client import AnalystUnavailable
from collector.clock import younger_than
from collector.intake import replicate
from collector.node import Node
from collector.replay import replay_journal
from pullprint import keys
from pullprint.errors import PullprintError
from pullprint.states import FINAL_STATES

log = logging.getLogger(__name__)
EXPIRY_SLACK = timedelta(minutes=5)
LOOKUP_BATCH = 500  # lets the analyst expire a job (and say so) before its files go


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
        record = {**node.spool.meta(job_id), "locations": sorted({*meta.get("locations", []), node.id})}
        record.pop("provisional", None)
        job, _ = node.analyst.register_job(record)
    except PullprintError as exc:  # unreachable, or refused: keep the copy, ask again next time
        log.warning("could not register unknown job %s from this node's copy: %s", job_id, exc.code)
        return "kept"
    if job["id"] != job_id:
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
            added = replicate(node, job_id, node.spool.meta(job_id), exclude=holders)
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
        records = node.analyst.jobs(location=node.id)
    except (AnalystUnavailable, PullprintError):
        records = None
    for job in records or []:
        if job.get("state") in FINAL_STATES or node.spool.has(job["id"]):
            continue
        log.warning("job %s is recorded on %s but its file is missing: forgetting this copy", job["id"], node.id)
        try:
            node.analyst.remove_location(job["id"], node.id)
            found["records_without_file"] += 1
        except (AnalystUnavailable, PullprintError):
            pass
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


class Housekeeper:
    """Runs each duty on its own period until stopped: the heartbeat in a thread of its own (a long
    reconcile or repair must never let this node's membership lapse), the other duties in another.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.stop_event = threading.Event()
        self.absent_since: dict[str, float] = {}
        self.last_scan = LastScan()
        self.census = status.CensusState()
        self.analyst_away = False
        self.failed_probes = 0
        self.claim_keeper = site_claims.ClaimKeeper(node)
        cfg = node.config
        self.duties: list[tuple[str, float, Callable[[], Any]]] = [
            ("journal", 2.0, lambda: replay_journal(node)),
            ("directory", 30.0, node.directory.refresh),
            ("repair", 5.0, lambda: repair_replicas(node, self.absent_since, cfg.repair_grace_seconds,
                                                    self.last_scan)),
            ("reconcile", cfg.reconcile_seconds, lambda: reconcile(node)),
            ("orphans", cfg.reconcile_seconds, lambda: sweep_orphans(node)),
            ("expire", cfg.expire_seconds, lambda: expire_jobs(node)),
            ("census", 5.0, lambda: status.take_census(node, self.census)),
        ]
        self._next = {name: 0.0 for name, _, _ in self.duties}

    def heartbeat(self) -> None:
        cfg = self.node.config
        try:
            membership.announce(self.node.redis, cfg.id, cfg.url, cfg.site, cfg.member_ttl_seconds)
            status.record_redis_seen(self.node)  # for /readyz, answered in the worker processes
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot announce membership in redis: %s", exc)
        down_key = keys.analyst_down(cfg.site)
        try:
            collectors = self.node.analyst.probe(cfg.id, cfg.url, cfg.site)
            self.node.membership.remember(collectors)
        except (AnalystUnavailable, PullprintError):
            self.analyst_away = True
            self.failed_probes += 1
            # Two misses in a row, not one slow answer, tell the whole site to stop waiting for it.
            if self.failed_probes >= 2:
                with contextlib.suppress(Exception):
                    self.node.redis.set(down_key, cfg.id, px=int(cfg.heartbeat_seconds * 3000))
            self.claim_keeper.keep(analyst_reachable=False)
            return
        self.claim_keeper.keep(analyst_reachable=True)
        self.failed_probes = 0
        if self.analyst_away:
            # The analyst is back: replay the journal now, then drop what it says is gone.
            self.analyst_away = False
            now = time.monotonic()
            self._next["journal"], self._next["reconcile"], self._next["directory"] = now, now + 1, now
        with contextlib.suppress(Exception):
            self.node.redis.delete(down_key)

    def run_once(self) -> None:
        now = time.monotonic()
        for name, period, duty in self.duties:
            if now >= self._next[name]:
                self._next[name] = now + period
                try:
                    duty()
                except Exception:  # noqa: BLE001 - one failing duty must not stop the others
                    log.exception("housekeeping duty %s failed", name)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.run_once()
            self.stop_event.wait(0.2)

    def beat(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001
                log.exception("heartbeat failed")
            self.stop_event.wait(max(0.05, self.node.config.heartbeat_seconds - (time.monotonic() - started)))

    def start(self) -> None:
        threading.Thread(target=self.beat, name="heartbeat", daemon=True).start()
        threading.Thread(target=self.run, name="housekeeping", daemon=True).start()
