"""Degraded mode: with the analyst away, the site keeps accepting, logging in and releasing; replay loses nothing."""

from __future__ import annotations

import os
import time

import requests

from tests.e2e.conftest import login, received_hashes, release, sha, submit, user, wait_for


def _analyst(cluster, path: str) -> dict:
    return requests.get(f"{cluster.analyst_url}/api/v1{path}", timeout=5,
                        headers={"Authorization": f"Bearer {cluster.secret('cluster_token')}"}).json()


def test_site_keeps_working_without_the_analyst_and_replays_everything(cluster):
    alice = user(cluster, "alice")
    printer = cluster.printers[1]
    online = os.urandom(30_000)
    online_id = submit(cluster, "alice", online).json()["id"]
    cluster.stop_analyst(kill=True)
    try:
        offline = os.urandom(40_000)
        first = submit(cluster, "alice", offline, headers={"Idempotency-Key": "urn:uuid:offline-1"})
        assert first.status_code == 201, first.text
        offline_id = first.json()["id"]
        # A retried submission of the same CUPS job is still one job, analyst or not.
        again = submit(cluster, "alice", offline, headers={"Idempotency-Key": "urn:uuid:offline-1"})
        assert again.status_code == 200 and again.json()["id"] == offline_id

        started = time.monotonic()
        session = login(cluster, printer["id"], badge=alice["badge"])
        assert session.status_code == 201, session.text
        assert time.monotonic() - started < 2.0  # within the login budget, analyst dead
        body = session.json()
        assert any("offline" in w for w in body["warnings"])
        listed = {j["id"]: j for j in body["jobs"]}
        assert listed[offline_id]["available"] and listed[online_id]["available"]

        answer = release(cluster, body["session"], {"jobs": [online_id, offline_id]}).json()
        assert [r["status"] for r in answer["results"]] == ["printed", "printed"]
        # A second terminal trying the same jobs gets nothing printed.
        other = login(cluster, printer["id"], user="alice", pin=alice["pin"]).json()
        assert {j["id"] for j in other["jobs"]}.isdisjoint({online_id, offline_id})
        again = release(cluster, other["session"], {"jobs": [offline_id]}).json()
        assert again["results"][0]["status"] == "not-releasable"
    finally:
        cluster.start_analyst_again()
    for data in (online, offline):
        assert received_hashes(printer).count(sha(data)) == 1

    # Replay: the analyst learns of the offline job, its release, and marks them as offline events.
    for job_id in (offline_id, online_id):  # each holder replays its own journal
        wait_for(lambda job_id=job_id: _analyst(cluster, f"/jobs/{job_id}").get("job", {}).get("state") == "printed",
                 30, "the offline release to be replayed as printed")
    events = _analyst(cluster, f"/events?job={offline_id}&limit=50")["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("submit") == 1 and kinds.count("print") == 1
    assert all(e["detail"].get("offline") for e in events if e["kind"] in ("submit", "print"))
    # Nothing is left behind: no journal entries, no spool copies.
    wait_for(lambda: all(not (c.spool_dir / "journal.jsonl").read_text().strip()
                         for c in cluster.collectors.values()), 20, "journals to drain")
    for collector in cluster.collectors.values():
        for job_id in (online_id, offline_id):
            assert not list((collector.spool_dir / "jobs").glob(f"{job_id}.*"))
