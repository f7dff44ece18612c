"""Degraded mode: with the analyst away, the site keeps accepting, logging in and releasing; replay loses nothing."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import time

import requests

from pullprint import keys
from tests.e2e.conftest import analyst_call, login, received_hashes, release, sha, submit, tls, user, wait_for


def _analyst(cluster, path: str) -> dict:
    return requests.get(f"{cluster.analyst_url}/api/v1{path}", timeout=5, **tls(cluster)).json()


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


def _redis(cluster):

    return cluster.redis_client(decode_responses=True, socket_timeout=2)


def _claims_ready(cluster) -> bool:
    try:
        return bool(_redis(cluster).exists(keys.site_claims_ready("main")))
    except Exception:  # noqa: BLE001 - Redis still starting
        return False


def test_redis_restarted_empty_forgets_no_release_claim(cluster):
    """A job being released when Redis restarts empty is not printed by an offline release later,
    and while Redis and the analyst are both away no offline release is made at all."""
    carol = user(cluster, "carol")
    printer = cluster.printers[0]
    in_flight, fresh = os.urandom(20_000), os.urandom(21_000)
    in_flight_id = submit(cluster, "carol", in_flight).json()["id"]
    fresh_id = submit(cluster, "carol", fresh).json()["id"]
    # Another collector is sending `in_flight` right now, as far as the analyst knows.
    claimed = analyst_call(cluster, "POST", f"/jobs/{in_flight_id}/claim",
                           json={"user": "carol", "collector": "c9", "printer": printer["id"],
                                 "lease_seconds": 600})
    assert claimed.status_code == 200, claimed.text

    cluster.stop_redis(kill=True)
    cluster.start_redis_again()
    wait_for(lambda: _claims_ready(cluster), 20, "the collectors to put the site's claims back")
    assert _redis(cluster).exists(keys.offline_claim(in_flight_id))

    cluster.stop_analyst(kill=True)
    try:
        session = login(cluster, printer["id"], badge=carol["badge"]).json()
        answer = release(cluster, session["session"], {"jobs": [in_flight_id]}).json()
        assert answer["results"][0]["status"] == "not-releasable"

        # Now Redis restarts empty while the analyst is away: two failures at once. Nothing can
        # vouch that a job is not being printed elsewhere, so no offline release is made.
        cluster.stop_redis(kill=True)
        cluster.start_redis_again()
        time.sleep(3)  # the collectors notice and put back what their journals hold
        assert not _claims_ready(cluster)
        session = login(cluster, printer["id"], badge=carol["badge"]).json()
        answer = release(cluster, session["session"], {"jobs": [fresh_id]}).json()
        assert answer["results"][0]["status"] == "analyst-unreachable"
    finally:
        cluster.start_analyst_again()
    assert sha(in_flight) not in received_hashes(printer) and sha(fresh) not in received_hashes(printer)

    wait_for(lambda: _claims_ready(cluster), 20, "the site's claims to be restored once the analyst is back")
    session = login(cluster, printer["id"], badge=carol["badge"]).json()
    answer = release(cluster, session["session"], {"jobs": [fresh_id]}).json()
    assert answer["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(fresh)) == 1
    assert sha(in_flight) not in received_hashes(printer)
    # The other collector's release ends; its job goes away.
    token = claimed.json()["token"]
    assert analyst_call(cluster, "POST", f"/jobs/{in_flight_id}/finish",
                        json={"token": token, "state": "held", "collector": "c9"}).status_code == 200
    assert analyst_call(cluster, "DELETE", f"/jobs/{in_flight_id}", json={"reason": "test"}).status_code == 200


def _printing(cluster, printer_id: str) -> bool:
    status = cluster.sim.control.printer(printer_id)
    return bool(status.get("printing", status.get("status", {}).get("printing")))


def test_an_offline_release_whose_releaser_dies_mid_print_waits_for_the_user(cluster):
    """The offline claim is journalled before a byte goes out: when its releaser dies while the
    printer takes the job, the analyst learns on replay that the release was interrupted, and no
    plain release (a retry, another terminal) prints it a second time."""
    alice = user(cluster, "alice")
    printer = cluster.printers[1]
    releaser = cluster.collectors["c3"]
    data = os.urandom(30_000)
    job_id = submit(cluster, "alice", data, url=releaser.url).json()["id"]
    cluster.sim.control.sink(printer["id"], delay_seconds=4.0)  # the printer takes its time
    cluster.stop_analyst(kill=True)
    try:
        session = login(cluster, printer["id"], badge=alice["badge"], url=releaser.url).json()["session"]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(release, cluster, session, {"jobs": [job_id]}, url=releaser.url)
            # Claimed offline (journalled), connected, the bytes on their way: the releaser dies.
            wait_for(lambda: _printing(cluster, printer["id"]), 20, "the releaser to connect to the printer")
            time.sleep(0.3)
            cluster.kill_collector("c3")
            with contextlib.suppress(requests.RequestException):
                pending.result()
    finally:
        cluster.start_analyst_again()
        cluster.start_collector("c3")
        cluster.sim.control.sink(printer["id"], delay_seconds=0)
    wait_for(lambda: _analyst(cluster, f"/jobs/{job_id}")["job"]["state_reason"] == "interrupted", 30,
             "the replayed offline claim to mark the release interrupted")

    session = login(cluster, printer["id"], badge=alice["badge"]).json()["session"]
    answer = release(cluster, session, {"jobs": [job_id]}).json()
    assert answer["results"][0]["status"] == "interrupted"
    time.sleep(4.5)  # whatever the dead releaser had sent is in by now
    came_out = received_hashes(printer).count(sha(data))
    assert came_out <= 1
    # The user looked at the printer and asked again: only a confirmed release prints it again.
    confirmed = release(cluster, session, {"jobs": [job_id], "confirm_interrupted": True}).json()
    assert confirmed["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(data)) == came_out + 1
