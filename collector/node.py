"""Node: one collector's dependencies (spool, Redis, membership, analyst and peer clients, journal), per process."""

from __future__ import annotations

import concurrent.futures
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.analyst_client import AnalystClient
from collector.config import CollectorConfig
from collector.directory import DirectoryCache
from collector.journal import Journal
from collector.membership import Membership
from collector.peers import PeerClient
from collector.redis_client import connect as connect_redis
from collector.redis_client import username_for
from collector.spool import SpoolStore
from collector.state_mac import StateMac
from pullprint.errors import PullprintError
from pullprint.log import ContextExecutor
from pullprint.tls import TlsFiles


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
    # Both pools run each task in its submitter's context: its log lines and calls keep the request's id.
    pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: ContextExecutor(16, thread_name_prefix="fanout"))
    # Releases run here so a slow printer never holds a request past release_wait_seconds.
    release_pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: ContextExecutor(32, thread_name_prefix="release"))
    redis_seen_at: float = 0.0  # monotonic time of the heartbeat's last successful Redis write

    @property
    def id(self) -> str:
        return self.config.id

    @functools.cached_property
    def seals(self) -> StateMac:
        """MACs of the Redis values that carry authority (collector/state_mac.py)."""
        return StateMac(bytes.fromhex(self.config.installation_key))

    def cups_server(self) -> str:
        """The cupsd for ipp/ipps/lpd output (the node's own is started by `pullprint collector`)."""
        return self.config.cups_server

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.release_pool.shutdown(wait=False)


def build_node(config: CollectorConfig) -> Node:
    if not config.installation_key:
        raise PullprintError("bad-config", "collector.installation_key is not set", status=500)
    if not config.session_key:
        raise PullprintError("bad-config", "collector.session_key is not set", status=500)
    key = bytes.fromhex(config.installation_key)
    # Tight timeouts: a Redis that hangs must not hang a login. No automatic retries of
    # non-idempotent commands (a retried SET NX could make us think we lost a lock we hold).
    # Redis is TLS whatever insecure_plain_http says of HTTP: its URL's scheme (rediss) decides.
    redis_tls = (TlsFiles(config.ca_file, config.cert_file, config.key_file, config.crl_file)
                 if config.cert_file else None)
    client = connect_redis(config.redis_url, username=config.redis_username or username_for(config.id),
                           password=config.redis_password, tls=redis_tls, socket_timeout=0.5,
                           socket_connect_timeout=0.5, retry=None, decode_responses=True)
    spool = SpoolStore(config.spool_dir, key)
    analyst = AnalystClient(config.analyst_url, config.tls(), config.analyst_timeout, redis=client,
                            site=config.site, seals=StateMac(key))
    return Node(
        config=config,
        spool=spool,
        redis=client,
        analyst=analyst,
        peers=PeerClient(config.tls(), config.peer_timeout),
        journal=Journal(Path(config.spool_dir) / "journal.jsonl"),
        directory=DirectoryCache(analyst, Path(config.spool_dir) / "directory.json", config.badge_pepper),
        membership=Membership(client, config.id, Path(config.spool_dir) / "members.json", config.member_ttl_seconds,
                              StateMac(key)),
    )
