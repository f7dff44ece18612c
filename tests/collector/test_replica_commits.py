"""ReplicaCommits: peers hear that their copies are real, coalesced after the answer, and never at the answer's cost."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from collector.membership import Member
from collector.peers import COMMIT_BATCH, PeerUnreachable, ReplicaCommits


class Peers:
    """A stand-in PeerClient: records each commit call; the first one can be held open."""

    def __init__(self, fail_for: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.first_out, self.let_go = threading.Event(), threading.Event()
        self.let_go.set()
        self.fail_for = fail_for
        self.lock = threading.Lock()

    def commit(self, peer: Member, job_ids: list[str]) -> None:
        with self.lock:
            self.calls.append((peer.id, list(job_ids)))
        self.first_out.set()
        self.let_go.wait(5)
        if peer.id in self.fail_for:
            raise PeerUnreachable("peer-down", f"{peer.id} refused the connection")


LIVE = {name: Member(name, f"https://{name}.invalid") for name in ("c2", "c3")}


@pytest.fixture
def pool():
    with concurrent.futures.ThreadPoolExecutor(4) as executor:
        yield executor


def _settle(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    pool.submit(lambda: None).result(5)
    pool.shutdown(wait=True)


def test_jobs_registered_while_a_commit_is_out_go_together_in_the_next(pool) -> None:
    peers = Peers()
    peers.let_go.clear()
    commits = ReplicaCommits(peers, lambda: LIVE, pool, "c1")
    commits.later("j1", ["c1", "c2"])
    assert peers.first_out.wait(5)
    for job in ("j2", "j3", "j4"):
        commits.later(job, ["c1", "c2"])  # returns at once: the call for j1 is still out
    commits.later("j5", ["c3", "c1"])
    assert len(peers.calls) == 1
    peers.let_go.set()
    _settle(pool)
    assert sorted(peers.calls) == [("c2", ["j1"]), ("c2", ["j2", "j3", "j4"]), ("c3", ["j5"])]


def test_a_commit_never_goes_to_this_node_or_to_a_peer_that_is_not_live(pool) -> None:
    peers = Peers()
    commits = ReplicaCommits(peers, lambda: {"c2": LIVE["c2"]}, pool, "c1")
    commits.now("j1", ["c1", "c2", "c3"])  # c3 is away: its reconcile commits the copy
    assert peers.calls == [("c2", ["j1"])]


def test_a_failed_commit_is_logged_and_the_others_still_go(pool, caplog) -> None:
    peers = Peers(fail_for={"c2"})
    commits = ReplicaCommits(peers, lambda: LIVE, pool, "c1")
    with caplog.at_level("INFO", logger="collector.peers"):
        commits.now("j1", ["c1", "c2", "c3"])  # raises nothing: the submit is not undone by a commit
    assert sorted(peers.calls) == [("c2", ["j1"]), ("c3", ["j1"])]
    assert "deferred to its reconcile" in caplog.text and "c2" in caplog.text


def test_a_long_queue_goes_in_calls_of_at_most_a_batch(pool) -> None:
    peers = Peers()
    peers.let_go.clear()
    commits = ReplicaCommits(peers, lambda: LIVE, pool, "c1")
    commits.later("first", ["c2"])
    assert peers.first_out.wait(5)
    jobs = [f"j{i}" for i in range(COMMIT_BATCH + 7)]
    for job in jobs:
        commits.later(job, ["c2"])
    peers.let_go.set()
    _settle(pool)
    assert [len(ids) for _, ids in peers.calls] == [1, COMMIT_BATCH, 7]
    assert [job for _, ids in peers.calls[1:] for job in ids] == jobs


def test_after_the_pool_is_shut_down_a_commit_is_left_to_the_reconcile() -> None:
    executor = concurrent.futures.ThreadPoolExecutor(1)
    executor.shutdown()
    peers = Peers()
    commits = ReplicaCommits(peers, lambda: LIVE, executor, "c1")
    commits.later("j1", ["c2"])  # no error for the submit that asked
    assert peers.calls == []
