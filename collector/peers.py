"""PeerClient: the calls one collector makes to another (store a replica, fetch, direct print, delete)."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from typing import Any, BinaryIO
from urllib.parse import quote

from collector.membership import Member
from nodeserver.client import NodeClient, Unreachable
from pullprint.errors import PullprintError
from pullprint.pki import identity_dns
from pullprint.tls import TlsFiles

log = logging.getLogger(__name__)

META_HEADER = "X-Pullprint-Meta"
INTERNAL = "/internal/v1"
COMMIT_BATCH = 500  # job ids in one commit call (well under a collector's max_json_bytes)


class PeerUnreachable(Unreachable):
    """Another collector did not answer in time, refused the connection, or answered 5xx."""


def _identity(peer: Member) -> str:
    return identity_dns("collector", peer.id)


def encode_meta(meta: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(meta).encode()).decode()


def decode_meta(value: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(value.encode())))


class PeerClient:
    """Each call goes to one `Member` and only to it: the peer's certificate must name that collector."""

    def __init__(self, tls: TlsFiles | None, timeout: float, transfer_timeout: float = 120.0) -> None:
        self.http = NodeClient(tls, timeout, PeerUnreachable)
        # Transfers connect fast or fail fast, but may then stream for a while.
        self._transfer = (timeout, transfer_timeout)

    def _call(self, method: str, peer: Member, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, f"{peer.url}{INTERNAL}{path}", identity=_identity(peer), **kwargs)

    def store_replica(self, peer: Member, job_id: str, meta: dict[str, Any], sealed: BinaryIO) -> None:
        self._call("PUT", peer, f"/replicas/{quote(job_id, safe='')}", data=sealed, timeout=self._transfer,
                   headers={META_HEADER: encode_meta(meta), "Content-Type": "application/octet-stream"})

    def commit(self, peer: Member, job_ids: list[str]) -> None:
        """The jobs are registered (or journalled): the peer's provisional copies of them become real."""
        self._call("POST", peer, "/replicas/commit", json={"jobs": job_ids})

    def fetch(self, peer: Member, job_id: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        response = self._call("GET", peer, f"/jobs/{quote(job_id, safe='')}/spool", stream=True,
                              timeout=self._transfer)
        return decode_meta(response.headers[META_HEADER]), response.iter_content(64 * 1024)

    def print_direct(self, peer: Member, job_id: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        return dict(self._call("POST", peer, f"/jobs/{quote(job_id, safe='')}/print", json=body,
                               timeout=(self.http.timeout, timeout)).json())

    def delete(self, peer: Member, job_id: str) -> None:
        self._call("DELETE", peer, f"/jobs/{quote(job_id, safe='')}", ok=(200, 404))

    def held_for_user(self, peer: Member, user: str) -> list[dict[str, Any]]:
        return list(self._call("GET", peer, f"/users/{quote(user, safe='')}/jobs").json()["jobs"])


class ReplicaCommits:
    """The commits of jobs' copies on peers: made now, or after the submit is answered and coalesced.

    A peer keeps a copy provisional (never printed offline, never repaired from) until the job is
    registered or journalled and it hears so. A registered job's copy is committed by the peer's own
    reconcile if this never arrives (the peer away, this process gone), so for those `later` takes the
    commit off the submit's path: the jobs registered while one call to a peer is out go to it together
    in the next. A journalled job's copy is committed `now`, before the 201: the analyst cannot vouch
    for it, and if this node died the peer's committed copy is what gets the job registered.
    """

    def __init__(self, client: PeerClient, live_peers: Callable[[], Mapping[str, Member]], pool: Executor,
                 me: str) -> None:
        self._client, self._live_peers, self._pool, self._me = client, live_peers, pool, me
        self._lock = threading.Lock()
        self._queued: dict[str, list[str]] = {}
        self._sending = False

    def now(self, job_id: str, locations: Iterable[str]) -> None:
        self._send(self._by_peer({}, job_id, locations))

    def later(self, job_id: str, locations: Iterable[str]) -> None:
        with self._lock:
            self._by_peer(self._queued, job_id, locations)
            if self._sending or not self._queued:
                return  # the call out now sends this next
            self._sending = True
        try:
            self._pool.submit(self._drain)
        except RuntimeError:  # the pool is shut down: this process is going, the peers' reconcile commits
            with self._lock:
                self._sending = False

    def _by_peer(self, into: dict[str, list[str]], job_id: str, locations: Iterable[str]) -> dict[str, list[str]]:
        for location in locations:
            if location != self._me:
                into.setdefault(location, []).append(job_id)
        return into

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._queued = self._queued, {}
                if not batch:
                    self._sending = False
                    return
            try:
                self._send(batch)
            except Exception:  # noqa: BLE001 - never stop sending for the jobs after these
                log.exception("commit of copies on %s failed; deferred to their reconcile", ",".join(batch))

    def _send(self, job_ids_by_peer: Mapping[str, list[str]]) -> None:
        """Best effort: a failure is logged; the peer's reconcile commits what it missed."""
        if not job_ids_by_peer:
            return
        members = self._live_peers()
        for location, job_ids in job_ids_by_peer.items():
            for start in range(0, len(job_ids), COMMIT_BATCH):
                batch = job_ids[start:start + COMMIT_BATCH]
                try:
                    if location not in members:
                        raise PeerUnreachable("peer-away", f"{location} is not a live member")
                    self._client.commit(members[location], batch)
                except (PeerUnreachable, PullprintError) as exc:
                    log.info("commit of %d copies on %s (%s) deferred to its reconcile: %s", len(batch),
                             location, batch[0], exc.message)
