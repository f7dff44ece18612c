"""Retiring a collector: `pullprint collector --hand-over` gives every job it holds to the others, none is lost."""

from __future__ import annotations

import os

import requests

from pullprint import keys
from tests.e2e.conftest import analyst_get, login, received_hashes, release, sha, submit, tls, user, wait_for

QUICK = {"PULLPRINT_COLLECTOR_RECONCILE_SECONDS": "0"}  # the hand-over's last wait (for the others' reconcile)


def _held_here(collector) -> set[str]:
    return {path.stem for path in (collector.spool_dir / "jobs").glob("*.spool")}


def _unretire(collector) -> None:
    (collector.spool_dir / "retiring").unlink(missing_ok=True)  # what an operator does to call it off


def test_a_retiring_collector_hands_every_job_over_and_loses_none(cluster):
    c1, printer, carol = cluster.collectors["c1"], cluster.printers[0], user(cluster, "carol")
    documents = [os.urandom(30_000) for _ in range(6)]
    jobs = [submit(cluster, "carol", document, url=c1.url).json()["id"] for document in documents]
    assert set(jobs) <= _held_here(c1)
    try:
        done = cluster.hand_over_collector("c1", 60, env=QUICK)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "every job is with the other collectors" in done.stdout
        assert not _held_here(c1)
        for job_id in jobs:
            locations = analyst_get(cluster, f"/jobs/{job_id}")["job"]["locations"]
            assert "c1" not in locations and len(locations) == 2, locations  # two copies, on the others
            assert all(job_id in _held_here(cluster.collectors[holder]) for holder in locations)
        # From now on it takes nothing: no job (the backend's retry goes elsewhere), no peer's copy,
        # and HAProxy sees it unready.
        late = submit(cluster, "carol", b"late\n", url=c1.url)
        assert late.status_code == 503 and late.json()["error"] == "retiring", late.text
        assert requests.get(f"{c1.url}/readyz", timeout=5, **tls(cluster)).status_code == 503
        for _ in range(4):
            answer = submit(cluster, "carol", os.urandom(2_000), url=cluster.collectors["c2"].url)
            assert answer.status_code == 201 and "c1" not in answer.json()["locations"], answer.text
            jobs.append(answer.json()["id"])
        assert not _held_here(c1)
        # Every job prints once, from the others.
        token = login(cluster, printer["id"], badge=carol["badge"]).json()["session"]
        results = release(cluster, token, {"jobs": jobs[:6]}).json()["results"]
        assert [r["status"] for r in results] == ["printed"] * 6, results
        for document in documents:
            assert received_hashes(printer).count(sha(document)) == 1
    finally:
        _unretire(c1)


def test_a_hand_over_that_would_leave_too_few_copies_keeps_the_jobs(cluster):
    c1 = cluster.collectors["c1"]
    answers = [submit(cluster, "carol", os.urandom(5_000), url=c1.url).json() for _ in range(3)]
    cluster.kill_collector("c3")
    try:
        # (The hand-over trusts membership, like every placement: a collector dead for less than its
        # membership's time to live still counts as a holder. Retire in a quiet moment.)
        redis = cluster.redis_client()
        wait_for(lambda: not redis.exists(keys.collector_member("c3")), 30, "c3 out of the membership")
        # With c3 gone, a job on c1 and c2 cannot have two copies without c1: c1 keeps it.
        done = cluster.hand_over_collector("c1", 3, env=QUICK)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "still here" in done.stdout
        for answer in answers:
            assert answer["id"] in _held_here(c1)
            assert "c1" in analyst_get(cluster, f"/jobs/{answer['id']}")["job"]["locations"]
    finally:
        _unretire(c1)
        cluster.start_collector("c3")
