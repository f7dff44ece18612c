"""A lone collector acknowledges a job with one copy, or refuses it, as `min_copies_to_ack` says; the shortfall shows.

Each policy gets its own one-collector cluster; the test then starts a second collector and
watches the job get its copy (or the refused job get accepted).
"""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest
import requests

from localcluster.cluster import LocalCluster
from tests.e2e.conftest import (
    analyst_get,
    cluster_state_dir,
    login,
    received_hashes,
    release,
    sha,
    submit,
    tls,
    user,
    wait_for,
)


def _cluster(min_copies: int):
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=1, n_printers=1, with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_MIN_COPIES_TO_ACK": str(min_copies)}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def lenient_cluster():
    yield from _cluster(1)  # the default, spelled out


@pytest.fixture(scope="module")
def strict_cluster():
    yield from _cluster(2)


def _gauge(cluster, collector, name: str) -> float | None:
    text = requests.get(f"{collector.url}/metrics", timeout=5, **tls(cluster)).text
    match = re.search(rf'^pullprint_collector_{name}\{{collector="[^"]+"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def _under_replicated_gauge(cluster, collector) -> float | None:
    return _gauge(cluster, collector, "under_replicated_jobs")


def _readyz(cluster, collector) -> requests.Response:
    return requests.get(f"{collector.url}/readyz", timeout=5, **tls(cluster))


def _spooled(collector) -> list[str]:
    return sorted(p.name for p in (collector.spool_dir / "jobs").glob("*.spool"))


def test_a_lone_collector_acknowledges_with_one_copy_and_reports_the_shortfall(lenient_cluster):
    c1 = lenient_cluster.collectors["c1"]
    data = os.urandom(30_000)
    answer = submit(lenient_cluster, "alice", data, url=c1.url, headers={"Idempotency-Key": "urn:uuid:lone-1"})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    assert answer.json()["locations"] == ["c1"]

    # The shortfall is visible to the operator, and it is no reason to stop taking work.
    assert wait_for(lambda: _under_replicated_gauge(lenient_cluster, c1) == 1, 15,
                    "the under-replicated gauge to count it")
    ready = _readyz(lenient_cluster, c1)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["degraded"] == []  # Redis is fine, and the worker answering knows it
    assert ready.json()["replication"]["under_replicated_jobs"] == 1
    assert ready.json()["replication"]["min_copies_to_ack"] == 1
    # The replication lag: how long the job has been short of a copy, growing while it is.
    first = _readyz(lenient_cluster, c1).json()["replication"]["replication_lag_seconds"]
    time.sleep(1.2)
    assert _gauge(lenient_cluster, c1, "replication_lag_seconds") >= first + 1

    # A peer comes back: the job gets its second copy, and the shortfall is gone.
    c2 = lenient_cluster.start_collector("c2")
    wait_for(lambda: sorted(analyst_get(lenient_cluster, f"/jobs/{job_id}")["job"]["locations"]) == ["c1", "c2"],
             30, "the job to be copied to the new peer")
    assert f"{job_id}.spool" in _spooled(c2)
    assert wait_for(lambda: _under_replicated_gauge(lenient_cluster, c1) == 0, 15, "the gauge to drop to 0")
    assert _gauge(lenient_cluster, c1, "replication_lag_seconds") == 0
    assert _readyz(lenient_cluster, c1).json()["replication"]["under_replicated_jobs"] == 0

    # And it still prints, once.
    alice = user(lenient_cluster, "alice")
    printer = lenient_cluster.printers[0]
    token = login(lenient_cluster, printer["id"], url=c1.url, badge=alice["badge"]).json()["session"]
    assert release(lenient_cluster, token, {"jobs": [job_id]}, url=c1.url).json()["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(data)) == 1


def test_a_lone_collector_refuses_when_two_copies_are_required_then_accepts_once_a_peer_is_back(strict_cluster):
    c1 = strict_cluster.collectors["c1"]
    data = os.urandom(30_000)
    key = {"Idempotency-Key": "urn:uuid:strict-1"}
    refused = submit(strict_cluster, "bob", data, url=c1.url, headers=key)
    # 503 with a reason a person can read: the CUPS backend retries, then CUPS keeps the job queued.
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error"] == "too-few-copies" and body["required"] == 2 and body["copies"] == 1
    assert "no other collector is alive" in body["message"]
    # Nothing was kept: no copy on disk, no job at the analyst, nothing for bob to release.
    assert _spooled(c1) == []
    assert analyst_get(strict_cluster, "/jobs?owner=bob")["jobs"] == []
    assert _readyz(strict_cluster, c1).status_code == 200  # still ready: a peer's return is all it needs

    strict_cluster.start_collector("c2")
    # The backend's retry (same CUPS job-uuid) goes through once the peer is alive.
    accepted = wait_for(lambda: (r := submit(strict_cluster, "bob", data, url=c1.url, headers=key)).status_code == 201
                        and r, 20, "the retried submission to be accepted")
    job_id = accepted.json()["id"]
    assert sorted(accepted.json()["locations"]) == ["c1", "c2"]
    assert [j["id"] for j in analyst_get(strict_cluster, "/jobs?owner=bob")["jobs"]] == [job_id]
    again = submit(strict_cluster, "bob", data, url=c1.url, headers=key)
    assert again.status_code == 200 and again.json()["id"] == job_id  # one CUPS job, one job
