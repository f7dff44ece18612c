"""The tour a person takes: lp to the shared queue, badge in at a printer, release; the exact bytes come out once."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import requests

from tests.e2e.conftest import (
    MAX_JOB_BYTES,
    analyst_call,
    login,
    received_hashes,
    release,
    sha,
    submit,
    tls,
    user,
    wait_for,
)


def test_lp_then_badge_login_then_release_prints_identical_bytes_once(cluster, tmp_path):
    alice = user(cluster, "alice")
    printer = cluster.printers[0]
    document = tmp_path / "payroll.ps"
    data = b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n" + os.urandom(200_000) + b"\nshowpage\n"
    document.write_bytes(data)
    env = {**os.environ, "CUPS_SERVER": cluster.cupsd.server}
    subprocess.run(["lp", "-U", "alice", "-d", "SecurePrint", str(document)], env=env, check=True,
                   capture_output=True)

    def held_job():
        answer = login(cluster, printer["id"], badge=alice["badge"])
        assert answer.status_code == 201, answer.text
        jobs = [j for j in answer.json()["jobs"] if j["title"] == "payroll.ps"]
        return (answer.json()["session"], jobs[0]) if jobs else None

    token, job = wait_for(held_job, 30, "the lp job to be held")
    assert job["available"] and job["size"] == len(data) and job["pages"] == 1
    assert sha(data) not in received_hashes(printer)  # nothing printed before the release

    answer = release(cluster, token, {"jobs": [job["id"]]}, key="tour-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [{"id": job["id"], "status": "printed", "message": "Sent to the printer.",
                                         "warnings": []}]
    assert received_hashes(printer).count(sha(data)) == 1
    # The same request retried (same Idempotency-Key) and a double tap (new key) print nothing more.
    assert release(cluster, token, {"jobs": [job["id"]]}, key="tour-1").json() == answer.json()
    again = release(cluster, token, {"jobs": [job["id"]]}, key="tour-2").json()["results"][0]
    assert again["status"] == "not-releasable"
    time.sleep(0.5)
    assert received_hashes(printer).count(sha(data)) == 1
    # The job is gone from the listing and from every collector's spool.
    listing = requests.get(f"{cluster.lb_url}/api/v1/sessions/{token}", timeout=5, **tls(cluster)).json()["jobs"]
    assert job["id"] not in [j["id"] for j in listing]
    for collector in cluster.collectors.values():
        assert not list((collector.spool_dir / "jobs").glob(f"{job['id']}.*"))
    # CUPS saw the job through: completed on the workstation side.
    out = subprocess.run(["lpstat", "-W", "completed", "-o", "SecurePrint"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "SecurePrint-" in out


def _holders_and_stranger(cluster, response):
    locations = response.json()["locations"]
    stranger = next(c for c in cluster.collectors.values() if c.id not in locations)
    return locations, stranger


def test_job_held_elsewhere_is_printed_directly_by_its_holder(cluster):
    bob = user(cluster, "bob")
    printer = cluster.printers[1]
    data = os.urandom(50_000)
    submitted = submit(cluster, "bob", data, url=cluster.collectors["c1"].url)
    assert submitted.status_code == 201, submitted.text
    locations, stranger = _holders_and_stranger(cluster, submitted)
    assert locations[0] == "c1" and len(locations) == 2  # acknowledged with a replica on a peer
    session = login(cluster, printer["id"], url=stranger.url, badge=bob["badge"]).json()
    result = release(cluster, session["session"], {"jobs": [submitted.json()["id"]]}, url=stranger.url).json()
    assert result["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(data)) == 1


def test_job_held_elsewhere_is_pulled_and_printed(cluster):
    bob = user(cluster, "bob")
    printer = cluster.printers[1]
    data = os.urandom(70_000)
    submitted = submit(cluster, "bob", data, url=cluster.collectors["c1"].url)
    locations, stranger = _holders_and_stranger(cluster, submitted)
    cluster.stop_collector(stranger.id)
    cluster.start_collector(stranger.id, release_mode="pull")
    try:
        session = login(cluster, printer["id"], url=stranger.url, pin=bob["pin"], user="bob").json()
        result = release(cluster, session["session"], {"jobs": [submitted.json()["id"]]}, url=stranger.url).json()
        assert result["results"][0]["status"] == "printed"
        assert received_hashes(printer).count(sha(data)) == 1
        for collector in cluster.collectors.values():  # the pulled copy went too
            assert not list((collector.spool_dir / "jobs").glob(f"{submitted.json()['id']}.*"))
    finally:
        cluster.stop_collector(stranger.id)
        cluster.start_collector(stranger.id)


def test_jammed_printer_refuses_with_reason_and_job_stays_releasable(cluster):
    carol = user(cluster, "carol")
    printer = cluster.printers[0]
    data = os.urandom(10_000)
    job_id = submit(cluster, "carol", data).json()["id"]
    cluster.sim.control.set_fault(printer["id"], "jam")
    try:
        time.sleep(0.6)  # let the cached healthy reading age past max_age
        token = login(cluster, printer["id"], badge=carol["badge"]).json()["session"]
        answer = release(cluster, token, {"jobs": [job_id]}).json()
        assert answer["results"][0]["status"] == "printer-error:jammed"
        assert "jam" in answer["results"][0]["message"].lower()
        assert sha(data) not in received_hashes(printer)
        listing = requests.get(f"{cluster.lb_url}/api/v1/sessions/{token}", timeout=5, **tls(cluster)).json()["jobs"]
        assert [j for j in listing if j["id"] == job_id][0]["available"]
    finally:
        cluster.sim.control.clear(printer["id"], "jam")
    time.sleep(0.6)
    answer = release(cluster, token, {"jobs": [job_id]}).json()
    assert answer["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(data)) == 1


# -- bad input: a clear JSON error, nothing lost, the service stays up ------------------------------

def test_unknown_badge_and_wrong_pin_get_the_same_401(cluster):
    printer = cluster.printers[0]["id"]
    unknown = login(cluster, printer, badge="9999999999")
    wrong_pin = login(cluster, printer, user="alice", pin="0000")
    unknown_user = login(cluster, printer, user="nobody", pin="0000")
    assert unknown.status_code == wrong_pin.status_code == unknown_user.status_code == 401
    assert unknown.json() == wrong_pin.json() == unknown_user.json()


def test_oversized_upload_gets_json_413_and_leaves_nothing(cluster):
    answer = submit(cluster, "alice", b"x" * (MAX_JOB_BYTES + 1))
    assert answer.status_code == 413
    assert answer.json()["error"] == "too-large"
    _assert_spools_clean(cluster)


def test_missing_owner_gets_json_400(cluster):
    answer = requests.post(f"{cluster.lb_url}/api/v1/jobs", data=b"data", timeout=10, **tls(cluster),
                           headers={"Authorization": f"Bearer {cluster.secret('submit_token')}"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "missing-owner"


def test_submission_without_the_token_is_refused(cluster):
    answer = requests.post(f"{cluster.lb_url}/api/v1/jobs", data=b"data", timeout=10, **tls(cluster),
                           headers={"X-Pullprint-Owner": "alice"})
    assert answer.status_code == 401


def test_dropped_upload_leaves_no_job(cluster):
    carol = user(cluster, "carol")
    collector = cluster.collectors["c2"]
    host, port = collector.url.split("://", 1)[1].split(":")
    before = _job_ids(cluster, carol)
    head = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nX-Pullprint-Owner: carol\r\n"
            f"Authorization: Bearer {cluster.secret('submit_token')}\r\nContent-Length: 100000\r\n\r\n").encode()
    context = cluster.client_context()
    assert context is not None
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname=host) as conn:
        conn.sendall(head + os.urandom(40_000))
    time.sleep(1.0)
    assert _job_ids(cluster, carol) == before
    _assert_spools_clean(cluster)
    assert requests.get(f"{collector.url}/readyz", timeout=5, **tls(cluster)).status_code == 200


def test_releasing_another_users_job_is_refused(cluster):
    alice, bob = user(cluster, "alice"), user(cluster, "bob")
    printer = cluster.printers[0]
    data = os.urandom(5_000)
    alices_job = submit(cluster, "alice", data).json()["id"]
    token = login(cluster, printer["id"], badge=bob["badge"]).json()["session"]
    answer = release(cluster, token, {"jobs": [alices_job]}).json()
    assert answer["results"][0]["status"] == "not-owner"
    assert sha(data) not in received_hashes(printer)
    assert alices_job in _job_ids(cluster, alice)  # untouched


def test_malformed_json_gets_400_not_500(cluster):
    for body in (b"{not json", b"[1, 2]", b'"a string"', b""):
        answer = requests.post(f"{cluster.lb_url}/api/v1/sessions", data=body, timeout=10, **tls(cluster),
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, body
        assert "error" in answer.json()
    answer = login(cluster, cluster.printers[0]["id"], badge={"nested": "object"})  # type: ignore[arg-type]
    assert answer.status_code == 400


def _job_ids(cluster, who: dict) -> set[str]:
    answer = login(cluster, cluster.printers[0]["id"], badge=who["badge"])
    return {j["id"] for j in answer.json()["jobs"]}


def _assert_spools_clean(cluster) -> None:
    for collector in cluster.collectors.values():
        # Nothing half-written is left (the readiness probe's own file comes and goes).
        assert not [p for p in (collector.spool_dir / "tmp").iterdir() if not p.name.startswith(".probe")]
        for meta in (collector.spool_dir / "jobs").glob("*.spool"):
            assert meta.with_suffix(".json").exists()


def test_a_user_with_more_jobs_than_a_terminal_lists_logs_in_and_releases_them_all(cluster):
    """The listing holds the oldest 100 and the count of all; "release all" prints every one, once."""
    pin = "864209"
    assert analyst_call(cluster, "POST", "/users", json={"name": "hoarder", "pin": pin}).status_code in (200, 201)
    documents = [f"%!PS hoarder job {n}\n".encode() + os.urandom(64) for n in range(104)]
    ids = []
    for data in documents:
        answer = submit(cluster, "hoarder", data)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    printer = cluster.printers[1]

    answer = login(cluster, printer["id"], user="hoarder", pin=pin)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["jobs_total"] == 104
    assert [j["id"] for j in body["jobs"]] == ids[:100]  # oldest first

    result = release(cluster, body["session"], {"all": True}, key="hoarder-all").json()
    assert {r["id"] for r in result["results"]} == set(ids)
    assert {r["status"] for r in result["results"]} <= {"printed", "queued"}
    wait_for(lambda: all(received_hashes(printer).count(sha(d)) == 1 for d in documents), 120,
             "every one of the user's jobs at the printer")
    listing = requests.get(f"{cluster.lb_url}/api/v1/sessions/{body['session']}", timeout=5, **tls(cluster)).json()
    assert listing["jobs"] == [] and listing["jobs_total"] == 0
    assert all(received_hashes(printer).count(sha(d)) == 1 for d in documents)
