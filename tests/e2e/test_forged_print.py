"""Against the whole demo cluster: what a Redis writer or a compromised collector plants is never acted on.

Issue 9's probes, run as an attacker would: an unauthenticated SET on the cluster's Redis; member
records naming an attacker's address; and a direct print request (from a collector certificate, as
a compromised collector would send it) for a printer URI of the caller's choosing under a made-up
or self-declared offline claim. Each must fail: nothing reaches the attacker, the job stays held with
its copies intact, and a real release still prints it exactly once on the real printer.
"""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest
import redis as redis_lib
import requests

from pullprint import keys
from tests.e2e.conftest import analyst_get, login, received_hashes, release, sha, submit, user, wait_for


class Trap:
    """A listener on loopback that counts every connection made to it (the attacker's "printer" or "peer")."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def trap():
    listening = Trap()
    yield listening
    listening.close()


def _spool_has(cluster, collector_id: str, job_id: str) -> bool:
    return (cluster.collectors[collector_id].spool_dir / "jobs" / f"{job_id}.spool").exists()


def _as_collector(cluster, name: str) -> dict:
    """requests' TLS arguments of a collector certificate: what a compromised collector holds."""
    return {"verify": cluster.ca_file, "cert": cluster.node_cert("collector", name)} if cluster.tls else {}


def test_an_unauthenticated_set_on_the_clusters_redis_is_refused(cluster):
    host, port = "127.0.0.1", cluster.redis.port
    with socket.create_connection((host, port), timeout=2) as raw:  # plain TCP, as the probe did
        raw.sendall(b"*3\r\n$3\r\nSET\r\n$9\r\npp:probe1\r\n$1\r\n1\r\n")
        try:
            answer = raw.recv(100)
        except OSError:
            answer = b""
    assert not answer.startswith(b"+OK")
    stranger = redis_lib.Redis(host=host, port=port, ssl=True, ssl_ca_certs=str(cluster.redis.ca_file),
                               socket_timeout=2)  # TLS, but no certificate and no password
    with pytest.raises(redis_lib.exceptions.ConnectionError):
        stranger.set("pp:probe2", "1")
    assert cluster.redis_client().get("pp:probe1") is None and cluster.redis_client().get("pp:probe2") is None


def test_planted_members_never_receive_a_copy(cluster, trap):
    admin = cluster.redis_client()
    planted = json.dumps({"id": "evil", "url": f"https://127.0.0.1:{trap.port}", "site": "main"})
    admin.set(keys.collector_member("evil"), planted, ex=60)
    try:
        for _ in range(4):
            answer = submit(cluster, "bob", os.urandom(5_000), url=cluster.collectors["c1"].url)
            assert answer.status_code == 201 and "evil" not in answer.json()["locations"]
    finally:
        admin.delete(keys.collector_member("evil"))
    assert trap.connections == 0


def test_a_forged_direct_print_is_refused_and_the_job_still_prints_once(cluster, trap):
    alice, printer = user(cluster, "alice"), cluster.printers[0]
    data = b"%!PS confidential " + os.urandom(30_000)
    answer = submit(cluster, "alice", data, url=cluster.collectors["c1"].url)
    assert answer.status_code == 201
    job_id, locations = answer.json()["id"], answer.json()["locations"]
    holder, caller = "c1", next(c for c in cluster.collectors if c != "c1")
    admin = cluster.redis_client()
    admin.set(keys.offline_claim(job_id), f"{caller} {printer['id']}", ex=60)  # a planted "site claim"
    attacker_uri = f"socket://127.0.0.1:{trap.port}"
    forged = [
        {"printer": {"id": printer["id"], "uri": attacker_uri}, "claim": {"user": "alice", "token": 99}},
        {"printer": {"id": "attacker", "uri": attacker_uri}, "claim": {"user": "alice", "token": 99}},
        {"printer": {"id": printer["id"], "uri": attacker_uri},
         "claim": {"user": "alice", "token": 0, "offline_at": "2026-12-02T05:00:00+00:00"}},
    ]
    url = f"{cluster.collectors[holder].url}/internal/v1/jobs/{job_id}/print"
    try:
        for body in forged:
            refused = requests.post(url, json=body, timeout=30, **_as_collector(cluster, caller))
            assert refused.status_code in (403, 404), (body, refused.status_code, refused.text)
    finally:
        admin.delete(keys.offline_claim(job_id))
    assert trap.connections == 0 and sha(data) not in received_hashes(printer)
    job = analyst_get(cluster, f"/jobs/{job_id}")["job"]
    assert job["state"] == "held" and sorted(job["locations"]) == sorted(locations)
    assert all(_spool_has(cluster, c, job_id) for c in locations)  # every copy intact, none shredded

    token = login(cluster, printer["id"], badge=alice["badge"]).json()["session"]
    result = release(cluster, token, {"jobs": [job_id]}).json()["results"][0]
    assert result["status"] == "printed", result
    wait_for(lambda: sha(data) in received_hashes(printer), 10, "the job at the real printer")
    assert received_hashes(printer).count(sha(data)) == 1 and trap.connections == 0
