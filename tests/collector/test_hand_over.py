"""copies.hand_over decides per job: what the retiring node gives away, drops, or must keep (stand-ins for
its peers and the analyst; tests/e2e/test_retire.py runs it against a real cluster)."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from collector import copies
from collector.membership import Member

LIVE = {name: Member(name, f"https://{name}.invalid") for name in ("c2", "c3")}


class Spool:
    def __init__(self, jobs: list[str]) -> None:
        self.jobs = set(jobs)

    def job_ids(self) -> list[str]:
        return sorted(self.jobs)

    def meta(self, job_id: str) -> dict[str, Any]:
        return {"id": job_id, "owner": "alice", "sha256": "0" * 64, "locations": ["c1"]}

    def open_sealed(self, job_id: str) -> io.BytesIO:
        return io.BytesIO(b"sealed")

    def delete(self, job_id: str) -> bool:
        self.jobs.discard(job_id)
        return True


class Peers:
    def __init__(self) -> None:
        self.stored: list[tuple[str, str, list[str]]] = []
        self.committed: list[tuple[str, str]] = []

    def store_replica(self, peer: Member, job_id: str, meta: dict[str, Any], sealed: io.BytesIO) -> None:
        self.stored.append((peer.id, job_id, meta["locations"]))

    def commit(self, peer: Member, job_id: str) -> None:
        self.committed.append((peer.id, job_id))


class Analyst:
    def __init__(self, known: dict[str, dict[str, Any]]) -> None:
        self.known = known
        self.added: list[tuple[str, str]] = []
        self.removed: list[tuple[str, str]] = []

    def lookup(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {job_id: self.known[job_id] for job_id in job_ids if job_id in self.known}

    def add_location(self, job_id: str, collector: str) -> None:
        self.added.append((job_id, collector))

    def remove_location(self, job_id: str, collector: str) -> None:
        self.removed.append((job_id, collector))


def _node(jobs: dict[str, dict[str, Any] | None], live: dict[str, Member] = LIVE) -> Any:
    return SimpleNamespace(id="c1", config=SimpleNamespace(id="c1", replicas=2, site=""),
                           spool=Spool(list(jobs)), peers=Peers(),
                           analyst=Analyst({k: v for k, v in jobs.items() if v is not None}),
                           membership=SimpleNamespace(peers=lambda: live))


def test_each_job_goes_only_once_it_has_its_copies_elsewhere() -> None:
    node = _node({
        "elsewhere": {"state": "held", "locations": ["c1", "c2", "c3"]},   # two other copies already
        "one_short": {"state": "held", "locations": ["c1", "c2"]},         # a copy made on c3 first
        "printing": {"state": "releasing", "locations": ["c1", "c2"]},     # left for the next pass
        "printed": {"state": "printed", "locations": ["c1", "c2"]},        # nothing to give away
        "unknown": None,                                                  # registration still journalled
    })
    counts = copies.hand_over(node)
    assert counts == {"handed_over": 1, "already_elsewhere": 1, "dropped": 1, "left": 2}
    assert node.spool.job_ids() == ["printing", "unknown"]
    # The new copy names its holders without the retiring node, and is committed before c1's goes.
    assert node.peers.stored == [("c3", "one_short", ["c2", "c3"])]
    assert node.peers.committed == [("c3", "one_short")]
    assert node.analyst.added == [("one_short", "c3")]
    assert sorted(node.analyst.removed) == [("elsewhere", "c1"), ("one_short", "c1")]


def test_a_job_that_cannot_have_its_copies_without_this_node_stays() -> None:
    node = _node({"lonely": {"state": "held", "locations": ["c1", "c2"]}}, live={"c2": LIVE["c2"]})
    assert copies.hand_over(node) == {"handed_over": 0, "already_elsewhere": 0, "dropped": 0, "left": 1}
    assert node.spool.job_ids() == ["lonely"]
    assert node.analyst.removed == []
