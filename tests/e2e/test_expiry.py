"""Held jobs expire: every copy goes from every collector, and the analyst records the expiry."""

from __future__ import annotations

import os
import shutil

import pytest

from localcluster.cluster import LocalCluster
from tests.e2e.conftest import analyst_get, cluster_state_dir, submit, wait_for

LIFETIME_SECONDS = 3


@pytest.fixture(scope="module")
def short_lived():
    state = cluster_state_dir()
    env = {"PULLPRINT_COLLECTOR_JOB_LIFETIME_HOURS": str(LIFETIME_SECONDS / 3600),
           "PULLPRINT_COLLECTOR_EXPIRE_SECONDS": "1", "PULLPRINT_COLLECTOR_RECONCILE_SECONDS": "1"}
    with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False, extra_env=env) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _copies(cluster: LocalCluster, job_id: str) -> list[str]:
    return [c.id for c in cluster.collectors.values() if list((c.spool_dir / "jobs").glob(f"{job_id}.*"))]


def test_held_job_expires_and_leaves_no_copy_anywhere(short_lived):
    answer = submit(short_lived, "alice", os.urandom(10_000))
    job_id = answer.json()["id"]
    assert sorted(_copies(short_lived, job_id)) == ["c1", "c2"]
    wait_for(lambda: analyst_get(short_lived, f"/jobs/{job_id}")["job"]["state"] == "expired", 30,
             "the job to expire")
    wait_for(lambda: _copies(short_lived, job_id) == [], 30, "every copy to go")
    events = analyst_get(short_lived, f"/events?job={job_id}")["events"]
    assert "expire" in [e["kind"] for e in events]
