"""What this node's background loop last saw (Redis reachable, under-replicated jobs), in files every worker reads."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from collector.node import Node
from pullprint.errors import PullprintError

# /readyz and /metrics run in the gunicorn workers; the heartbeat and the census run in the
# collector's main process. A small file is how the workers learn what those saw, without
# asking Redis themselves (a slow Redis must never make a health check time out).
STATUS_DIR = "status"
RECOUNT_SECONDS = 60.0  # an unchanged spool and membership are counted again this often anyway


def _folder(node: Node) -> Path:
    folder = Path(node.config.spool_dir) / STATUS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _write(node: Node, name: str, data: dict[str, Any]) -> None:
    folder = _folder(node)
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, folder / name)  # readers see the old file or the new one, never half of one


def _read(node: Node, name: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads((Path(node.config.spool_dir) / STATUS_DIR / name).read_text()))
    except (OSError, ValueError):
        return None


def record_redis_seen(node: Node) -> None:
    """The heartbeat reached Redis just now (CLOCK_MONOTONIC is the same in every process of the host)."""
    node.redis_seen_at = time.monotonic()
    with contextlib.suppress(OSError):  # a spool that cannot be written makes /readyz say so itself
        _write(node, "redis.json", {"seen_at": node.redis_seen_at})


def redis_seen_at(node: Node) -> float:
    """Monotonic time of the heartbeat's last successful Redis write, as any process of this node saw it."""
    seen = _read(node, "redis.json") or {}
    return max(node.redis_seen_at, float(seen.get("seen_at", 0.0)))


@dataclass
class ReplicationCensus:
    """Held jobs with fewer live copies than `replicas`, counted on the collector that copies them again."""

    replicas: int
    under_replicated_jobs: int
    held_copies: int
    counted_at: float  # wall-clock time of the count
    # Replication lag: how long the longest-waiting of those jobs has been short of a copy (0: none).
    replication_lag_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CensusState:
    """What the last count saw, so an unchanged spool and membership are not read again every round."""

    view: tuple[int, frozenset[str]] = (0, frozenset())
    at: float = float("-inf")
    short_since: dict[str, float] = field(default_factory=dict)  # job id -> when it was first seen short


def take_census(node: Node, state: CensusState | None = None) -> ReplicationCensus | None:
    """Count this node's under-replicated jobs and record the count for /readyz and /metrics.

    A job counts when fewer than `replicas` collectors that are alive now (this one and the live
    members named in its locations) hold it, and this node is the live holder with the smallest
    id: the one whose repair copies it again. Each job is counted once in the whole cluster, so the
    sum over collectors is the cluster's figure. Provisional copies are not jobs yet. Returns None
    when nothing changed since the last count.
    """
    members = node.membership.peers()
    jobs_dir = Path(node.config.spool_dir) / "jobs"
    now = time.monotonic()
    # The jobs folder's mtime moves with every copy added, removed or re-described (atomic renames).
    view = (jobs_dir.stat().st_mtime_ns, frozenset(members))
    if state is not None:
        if view == state.view and now - state.at < RECOUNT_SECONDS:
            return None
        state.view, state.at = view, now
    under: list[str] = []
    held = 0
    for job_id in node.spool.job_ids():
        try:
            placement = node.spool.placement(job_id)
        except PullprintError:
            continue  # deleted meanwhile
        if placement.get("provisional"):
            continue
        held += 1
        live = {node.id} | {loc for loc in placement.get("locations", []) if loc in members}
        if len(live) < node.config.replicas and min(live) == node.id:
            under.append(job_id)
    counted_at = time.time()
    since = state.short_since if state is not None else {}
    for job_id in set(since) - set(under):
        del since[job_id]  # copied again, printed or gone
    for job_id in under:
        since.setdefault(job_id, counted_at)
    lag = counted_at - min(since.values()) if since else 0.0
    census = ReplicationCensus(node.config.replicas, len(under), held, counted_at, round(lag, 3))
    _write(node, "replication.json", census.to_json())
    return census


def replication_lag(census: ReplicationCensus) -> float:
    """Seconds the longest-waiting under-replicated job has been short of a copy, now (0 when none is)."""
    if not census.under_replicated_jobs:
        return 0.0
    return round(census.replication_lag_seconds + max(0.0, time.time() - census.counted_at), 3)


def last_census(node: Node) -> ReplicationCensus | None:
    """The newest count any process of this node recorded; None before the first one."""
    data = _read(node, "replication.json")
    if data is None:
        return None
    try:
        return ReplicationCensus(**data)
    except TypeError:
        return None  # written by another version: the next count replaces it


def record_poll_cycle(node: Node, cycle: dict[str, Any], states: dict[str, str]) -> None:
    """The SNMP poller's last cycle (collector/health/poller.py `last_cycle`) and the state of each
    printer it polled then (collector/health/policy.py STATES), for /metrics."""
    with contextlib.suppress(OSError):
        _write(node, "poller.json", {**cycle, "states": states})


def last_poll_cycle(spool_dir: str) -> dict[str, Any] | None:
    """What record_poll_cycle last wrote under `spool_dir` (any process of the node); None before."""
    try:
        return dict(json.loads((Path(spool_dir) / STATUS_DIR / "poller.json").read_text()))
    except (OSError, ValueError):
        return None
