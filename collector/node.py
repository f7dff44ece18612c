"""Node: one collector's dependencies (spool, Redis, membership, analyst and peer clients, journal), per process."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.analyst_client import AnalystClient
from collector.config import CollectorConfig
from collector.directory import DirectoryCache
from collector.journal import Journal
from collector.membership import Membership
from collector.peers import PeerClient
from collector.spool import SpoolStore
from pullprint.errors import PullprintError


@dataclass
class Node:
    config: CollectorConfig
    spool: SpoolStore
    redis: Any
    analyst: AnalystClient
    peers: PeerClient
    journal: Journal
    directory: DirectoryCache
    membership: Membership
    pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="fanout"))
    # Releases run here so a slow printer never holds a request past release_wait_seconds.
    release_pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="release"))
    redis_seen_at: float = 0.0  # monotonic time of the heartbeat's last successful Redis write

    @property
    def id(self) -> str:
        return self.config.id

    def cups_server(self) -> str:
        """The cupsd for ipp/ipps/lpd output (the node's own is started by `pullprint collector`)."""
        return self.config.cups_server

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.release_pool.shutdown(wait=False)


def build_node(config: CollectorConfig) -> Node:
    import redis

    if not config.installation_key:
        raise PullprintError("bad-config", "collector.installation_key is not set", status=500)
    if not config.cluster_token:
        raise PullprintError("bad-config", "collector.cluster_token is not set", status=500)
    key = bytes.fromhex(config.installation_key)
    # Tight timeouts: a Redis that hangs must not hang a login. No automatic retries of
    # non-idempotent commands (a retried SET NX could make us think we lost a lock we hold).
    client = redis.Redis.from_url(config.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                  retry=None, decode_responses=True)
    spool = SpoolStore(config.spool_dir, key)
    analyst = AnalystClient(config.analyst_url, config.cluster_token, config.analyst_timeout, redis=client,
                            site=config.site)
    return Node(
        config=config,
        spool=spool,
        redis=client,
        analyst=analyst,
        peers=PeerClient(config.cluster_token, config.peer_timeout),
        journal=Journal(Path(config.spool_dir) / "journal.jsonl"),
        directory=DirectoryCache(analyst, Path(config.spool_dir) / "directory.json", config.badge_pepper),
        membership=Membership(client, config.id, Path(config.spool_dir) / "members.json", config.member_ttl_seconds),
    )
