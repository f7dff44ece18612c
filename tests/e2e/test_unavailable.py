"""A job whose every copy is on a dead collector is listed as unavailable: not hidden, not stalling the login."""

from __future__ import annotations

import os
import time

from tests.e2e.conftest import analyst_get, login, received_hashes, release, sha, submit, user, wait_for

LOGIN_BUDGET = 2.0


def _timed_login(cluster, printer: dict, badge: str) -> tuple[dict, float]:
    started = time.monotonic()
    answer = login(cluster, printer["id"], badge=badge)  # through HAProxy, to whichever collector is alive
    took = time.monotonic() - started
    assert answer.status_code == 201, answer.text
    return answer.json(), took


def test_a_job_whose_holders_are_all_dead_is_listed_unavailable_and_comes_back_with_them(cluster):
    carol = user(cluster, "carol")
    printer = cluster.printers[0]
    data = os.urandom(25_000)
    answer = submit(cluster, "carol", data, url=cluster.collectors["c1"].url, title="unavailable-test")
    assert answer.status_code == 201
    job_id, holders = answer.json()["id"], answer.json()["locations"]
    assert len(holders) == 2
    survivor = next(c for c in cluster.collectors if c not in holders)

    for holder in holders:
        cluster.kill_collector(holder)
    try:
        logins: list[float] = []

        def listed_unavailable():
            body, took = _timed_login(cluster, printer, carol["badge"])
            logins.append(took)
            entry = next((j for j in body["jobs"] if j["id"] == job_id), None)
            assert entry is not None, "the job must never be hidden from its owner"
            return entry if entry["available"] is False else None

        # Until the dead nodes' membership lapses (3 s) the job may still look available.
        entry = wait_for(listed_unavailable, 15, "the job to be listed unavailable")
        assert entry["reason"] == "holder-unreachable"
        assert entry["message"] == "Every collector holding this job is unreachable right now."
        assert entry["title"] == "unavailable-test"
        assert max(logins) < LOGIN_BUDGET, logins  # no login waited on a dead node

        # Releasing it says why, and the job stays held for later.
        token = login(cluster, printer["id"], badge=carol["badge"]).json()["session"]
        result = release(cluster, token, {"jobs": [job_id]}).json()["results"][0]
        assert result["status"] == "unavailable", result
        assert analyst_get(cluster, f"/jobs/{job_id}")["job"]["state"] == "held"
        assert sha(data) not in received_hashes(printer)
        # "Release all" leaves it alone rather than failing on it.
        assert job_id not in [r["id"] for r in release(cluster, token, {"all": True}).json()["results"]]
        assert survivor in cluster.collectors and cluster.collectors[survivor].daemon.alive()

        cluster.start_collector(holders[0])
        entry = wait_for(lambda: next(j for j in _timed_login(cluster, printer, carol["badge"])[0]["jobs"]
                                      if j["id"] == job_id)["available"], 15, "the job to be available again")
        token = login(cluster, printer["id"], badge=carol["badge"]).json()["session"]
        assert release(cluster, token, {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
        assert received_hashes(printer).count(sha(data)) == 1
    finally:
        for holder in holders:
            if not cluster.collectors[holder].daemon.alive():
                cluster.start_collector(holder)
