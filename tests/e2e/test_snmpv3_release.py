"""An SNMPv3 (authPriv) printer whose cached reading is stale is checked afresh at release with its real keys."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from collector.health.cache import read_health
from localcluster.cluster import LocalCluster
from tests.e2e.conftest import cluster_state_dir, login, received_hashes, release, sha, submit, user, wait_for

V3 = "p2"
MAX_AGE = 0.5


@pytest.fixture(scope="module")
def v3_cluster():
    state = cluster_state_dir()
    # The fleet poller reads once at start, then not for an hour: every release finds the cached
    # reading stale and asks the printer itself.
    with LocalCluster(state, n_collectors=2, n_printers=2, v3_printers=(V3,), with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_HEALTH_MAX_AGE": str(MAX_AGE),
                                 "PULLPRINT_COLLECTOR_POLL_INTERVAL_SECONDS": "3600"}) as running:
        wait_for(lambda: all(_synced(c.spool_dir) for c in running.collectors.values()), 30,
                 "every collector's directory sync to hold the v3 printer")
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _synced(spool_dir: Path) -> bool:
    try:
        printers = json.loads((spool_dir / "directory.json").read_text()).get("printers", [])
    except (OSError, ValueError):
        return False
    return any(p.get("id") == V3 for p in printers)


def _printer(cluster: LocalCluster) -> dict:
    printer = next(p for p in cluster.printers if p["id"] == V3)
    assert printer["snmp_version"] == "3" and printer["snmp_v3_priv_key"], "the simulator must run p2 as authPriv"
    return printer


def _assert_stale(cluster: LocalCluster) -> None:
    client = cluster.redis_client(decode_responses=True)
    try:
        reading = read_health(client, V3)
    finally:
        client.close()
    assert reading is None or time.time() - reading.polled_at > MAX_AGE


def test_healthy_v3_printer_with_a_stale_reading_prints(v3_cluster):
    printer = _printer(v3_cluster)
    bob = user(v3_cluster, "bob")
    data = os.urandom(6_000)
    job_id = submit(v3_cluster, "bob", data).json()["id"]
    time.sleep(MAX_AGE + 0.2)
    _assert_stale(v3_cluster)
    session = login(v3_cluster, V3, badge=bob["badge"]).json()
    result = release(v3_cluster, session["session"], {"jobs": [job_id]}).json()["results"][0]
    assert result["status"] == "printed", result
    assert received_hashes(printer).count(sha(data)) == 1


def test_jammed_v3_printer_is_refused_with_its_own_reason(v3_cluster):
    printer = _printer(v3_cluster)
    bob = user(v3_cluster, "bob")
    data = os.urandom(6_000)
    job_id = submit(v3_cluster, "bob", data).json()["id"]
    v3_cluster.sim.control.set_fault(V3, "jam")
    try:
        time.sleep(MAX_AGE + 0.2)
        _assert_stale(v3_cluster)
        session = login(v3_cluster, V3, badge=bob["badge"]).json()
        result = release(v3_cluster, session["session"], {"jobs": [job_id]}).json()["results"][0]
        assert result["status"] == "printer-error:jammed", result
        assert sha(data) not in received_hashes(printer)
    finally:
        v3_cluster.sim.control.clear(V3)
    time.sleep(MAX_AGE + 0.2)
    result = release(v3_cluster, session["session"], {"jobs": [job_id]}).json()["results"][0]
    assert result["status"] == "printed", result
    assert received_hashes(printer).count(sha(data)) == 1
