"""Replication under node loss: copies are made again, returning nodes forget what was printed while they were away."""

from __future__ import annotations

import concurrent.futures
import json
import os

from tests.e2e.conftest import analyst_get, login, received_hashes, release, sha, submit, user, wait_for


def _spool_has(collector, job_id: str) -> bool:
    return (collector.spool_dir / "jobs" / f"{job_id}.spool").exists()


def _copies_to_make(collector, lost: str) -> int:
    """How many jobs `collector` holds that also had a copy on `lost`: all of them are copied again,
    one by one and resting between copies, and the earlier tests on this cluster may leave some held."""
    count = 0
    for meta in (collector.spool_dir / "jobs").glob("*.json"):
        try:
            count += lost in json.loads(meta.read_text()).get("locations", [])
        except (OSError, ValueError):
            pass  # written or removed meanwhile
    return count


def _repair_timeout(backlog: int) -> float:
    """Membership's lapse, the grace and a repair period take about 10 s on a quiet machine; CI runs
    three test workers and a converge's ten hosts beside this on two cores, so allow several times
    that, then up to half a second a copy."""
    return 60 + 0.5 * backlog


def _wait_for_repair(cluster, check, backlog: int, what: str):
    """wait_for, and if the copy never came, the repairing node's own account of why in the failure."""
    try:
        return wait_for(check, _repair_timeout(backlog), f"{what} ({backlog} jobs to copy again)")
    except AssertionError as exc:
        log = (cluster.state_dir / "c1" / "collector.log").read_text(errors="replace").splitlines()
        told = [line for line in log if any(word in line for word in ("repair", "cop", "member", "WARNING", "ERROR"))]
        raise AssertionError(f"{exc}; c1's log:\n" + "\n".join(told[-40:])) from None


def test_killed_holder_is_replaced_and_its_stale_copy_goes_when_it_returns(cluster):
    carol = user(cluster, "carol")
    printer = cluster.printers[0]
    data = os.urandom(60_000)
    answer = submit(cluster, "carol", data, url=cluster.collectors["c1"].url)
    assert answer.status_code == 201
    job_id, locations = answer.json()["id"], answer.json()["locations"]
    replica = next(c for c in locations if c != "c1")
    assert _spool_has(cluster.collectors[replica], job_id)  # the copy was fsynced before the 201

    backlog = _copies_to_make(cluster.collectors["c1"], replica)
    cluster.kill_collector(replica)
    try:
        # After the grace period the survivor copies the job again, and the analyst records it.
        third = _wait_for_repair(cluster, lambda: next((c for c in analyst_get(cluster, f"/jobs/{job_id}")["job"]
                                                        ["locations"] if c not in ("c1", replica)), None),
                                 backlog, "a new copy")
        assert _spool_has(cluster.collectors[third], job_id)
        # Printed while the old replica holder is dead…
        token = login(cluster, printer["id"], badge=carol["badge"]).json()["session"]
        assert release(cluster, token, {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
        assert _spool_has(cluster.collectors[replica], job_id)  # its stale copy is still on its disk
    finally:
        cluster.start_collector(replica)
    # …so the returning node drops its stale copy before it serves anything.
    assert not _spool_has(cluster.collectors[replica], job_id)
    assert received_hashes(printer).count(sha(data)) == 1
    for collector in cluster.collectors.values():
        assert not _spool_has(collector, job_id)


def test_lone_collector_accepts_and_copies_as_soon_as_a_peer_returns(cluster):
    others = [c for c in cluster.collectors if c != "c1"]
    for cid in others:
        cluster.kill_collector(cid)
    try:
        # Until c1 sees its peers are gone it answers 503 (no peer could take a copy), and the
        # backend sends the job again, as here: no 503 is a held job. A blip of Redis can bring
        # that back for a moment (membership then comes from the analyst's last list).
        document = os.urandom(20_000)

        def taken():
            answer = submit(cluster, "alice", document, url=cluster.collectors["c1"].url)
            return answer if answer.status_code != 503 else None

        answer = wait_for(taken, 15, "c1 to take a job alone")
        assert answer.status_code == 201, answer.text
        assert answer.json()["locations"] == ["c1"]  # accepted, under-replicated
        job_id = answer.json()["id"]
        held = [j for j in analyst_get(cluster, "/users/alice/jobs")["jobs"] if j["sha256"] == sha(document)]
        assert [j["id"] for j in held] == [job_id]  # the refused tries left nothing behind
        cluster.start_collector(others[0])
        backlog = sum(1 for _ in (cluster.collectors["c1"].spool_dir / "jobs").glob("*.json"))
        _wait_for_repair(cluster, lambda: len(analyst_get(cluster, f"/jobs/{job_id}")["job"]["locations"]) == 2,
                         backlog, "the job to be copied to the returning peer")
        assert _spool_has(cluster.collectors[others[0]], job_id)
    finally:
        for cid in others:
            if not cluster.collectors[cid].daemon.alive():
                cluster.start_collector(cid)


def _provisional(collector, job_id: str) -> bool:
    return bool(json.loads((collector.spool_dir / "jobs" / f"{job_id}.json").read_text()).get("provisional"))


def test_every_peer_copy_is_committed_before_the_201(cluster):
    # With submitters side by side, each acknowledged job's copy on its peer is already a real one
    # (printable offline, repaired from) when the backend hears 201.
    documents = [os.urandom(5_000) for _ in range(24)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda d: submit(cluster, "alice", d, url=cluster.collectors["c1"].url), documents))
    assert [a.status_code for a in answers] == [201] * len(documents), [a.text for a in answers]
    copies = [(a.json()["id"], peer) for a in answers for peer in a.json()["locations"] if peer != "c1"]
    assert len(copies) == len(documents)  # one peer copy each (replicas: 2)
    assert not [job for job, peer in copies if _provisional(cluster.collectors[peer], job)]


def test_with_the_analyst_away_the_peer_copy_is_committed_before_the_201(cluster):
    cluster.stop_analyst(kill=True)
    try:
        answer = submit(cluster, "alice", os.urandom(5_000), url=cluster.collectors["c1"].url)
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        peers = [c for c in answer.json()["locations"] if c != "c1"]
        assert peers
        # Journalled, only the copies vouch for the job: if c1 died now, this committed copy is what
        # gets the job registered (reconcile adopts it) instead of being swept as never acknowledged.
        assert not any(_provisional(cluster.collectors[peer], job_id) for peer in peers)
    finally:
        cluster.start_analyst_again()
