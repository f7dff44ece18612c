"""A release that waited for a busy printer past its lease never prints a job a second time.

Its own small cluster (one collector, a 3 s lease) so the lease can lapse within the test: while
the first releaser waits for the printer, its lease lapses, the job is declared interrupted, and the
user confirms a new release. When the printer frees up, only the newer claim sends the job.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import time

import pytest

from collector.printer_lock import PrinterLock
from localcluster.cluster import LocalCluster
from tests.e2e.conftest import analyst_call, cluster_state_dir, login, received_hashes, release, sha, submit, user


@pytest.fixture(scope="module")
def slow_cluster():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=1, n_printers=1, with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_LEASE_SECONDS": "3",
                                 "PULLPRINT_ANALYST_LEASE_GRACE_SECONDS": "1"}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _job(slow_cluster, job_id: str) -> dict:
    return analyst_call(slow_cluster, "GET", f"/jobs/{job_id}").json()["job"]


def test_a_superseded_releaser_does_not_send_after_waiting_for_the_printer(slow_cluster):
    bob = user(slow_cluster, "bob")
    printer = slow_cluster.printers[0]
    data = os.urandom(10_000)
    job_id = submit(slow_cluster, "bob", data).json()["id"]
    busy = PrinterLock(slow_cluster.redis_client(), printer["id"], "another-job",
                       lease_seconds=5)
    busy.acquire(5)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        try:
            first = login(slow_cluster, printer["id"], badge=bob["badge"]).json()["session"]
            slow = pool.submit(release, slow_cluster, first, {"jobs": [job_id]})
            deadline = time.monotonic() + 10
            while _job(slow_cluster, job_id)["state"] != "releasing" and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(5)  # the 3 s lease and its 1 s grace lapse while it waits for the printer
            analyst_call(slow_cluster, "POST", "/maintenance/expire")  # (the collector's own sweep may be first)
            assert _job(slow_cluster, job_id)["state_reason"] == "interrupted"
            second = login(slow_cluster, printer["id"], badge=bob["badge"]).json()["session"]
            confirmed = pool.submit(release, slow_cluster, second, {"jobs": [job_id], "confirm_interrupted": True})
            time.sleep(1)
        finally:
            busy.release()
        answers = [f.result() for f in (slow, confirmed)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    statuses = sorted(a.json()["results"][0]["status"] for a in answers)
    assert statuses == ["not-releasable", "printed"]
    assert received_hashes(printer).count(sha(data)) == 1
    assert _job(slow_cluster, job_id)["state"] == "printed"
