"""What the docs promise about output: retries with backoff, waiting for a busy printer, stalls, and the lock's fence.

Its own one-collector cluster with short output settings, one simulated printer per test so the
sink knobs of one test never touch another's:

- output_retries 3, output_retry_backoff 0.3 s: a refusing printer is tried 4 times over 2.1 s;
- printer_lock_wait_seconds 8: how long a release waits for a printer busy with another job;
- release_wait_seconds 5: after that the terminal hears `queued` and the job goes out later;
- output_timeout 3: a send that has not finished by then fails.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import time

import pytest

from collector.printer_lock import PrinterLock
from localcluster.cluster import LocalCluster
from pullprint import keys
from tests.e2e.conftest import analyst_call, cluster_state_dir, login, received, release, sha, submit, user, wait_for

RETRIES, BACKOFF, LOCK_WAIT, RELEASE_WAIT, OUTPUT_TIMEOUT = 3, 0.3, 8.0, 5.0, 3.0


@pytest.fixture(scope="module")
def output_cluster():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=1, n_printers=6, with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_OUTPUT_RETRIES": str(RETRIES),
                                 "PULLPRINT_COLLECTOR_OUTPUT_RETRY_BACKOFF": str(BACKOFF),
                                 "PULLPRINT_COLLECTOR_PRINTER_LOCK_WAIT_SECONDS": str(LOCK_WAIT),
                                 "PULLPRINT_COLLECTOR_RELEASE_WAIT_SECONDS": str(RELEASE_WAIT),
                                 "PULLPRINT_COLLECTOR_OUTPUT_TIMEOUT": str(OUTPUT_TIMEOUT),
                                 "PULLPRINT_COLLECTOR_MAX_JOB_BYTES": str(64 * 1024 * 1024)}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def redis_client(output_cluster):
    client = output_cluster.redis_client(decode_responses=True)
    yield client
    client.close()


def _printer(cluster: LocalCluster, index: int) -> dict:
    printer = cluster.printers[index]
    cluster.sim.control.sink(printer["id"], refuse=False, stall=False, delay_seconds=0)
    return printer


def _job(cluster: LocalCluster, job_id: str) -> dict:
    return analyst_call(cluster, "GET", f"/jobs/{job_id}").json()["job"]


def _session(cluster: LocalCluster, printer: dict, name: str = "alice") -> str:
    return login(cluster, printer["id"], badge=user(cluster, name)["badge"]).json()["session"]


def _copies_at(printer: dict, data: bytes) -> int:
    return sum(1 for entry in received(printer) if entry["sha256"] == sha(data))


def _log(cluster: LocalCluster) -> str:
    return (cluster.state_dir / "c1" / "collector.log").read_text(errors="replace")


def test_a_printer_that_refuses_is_tried_again_with_backoff_then_the_job_stays_held(output_cluster):
    printer = _printer(output_cluster, 0)
    data = os.urandom(20_000)
    job_id = submit(output_cluster, "alice", data).json()["id"]
    log_start = len(_log(output_cluster))
    answer, took = _release_while_the_sink_misbehaves(output_cluster, printer, job_id, "refuse")
    assert answer["status"] == "printer-unreachable", answer
    assert "could not be reached" in answer["message"]
    # Tried 1 + 3 times, waiting 0.3 s, 0.6 s and 1.2 s in between.
    waits = re.findall(rf"printer {re.escape(printer['uri'])} took nothing .*; trying again in (\S+) s",
                       _log(output_cluster)[log_start:])
    assert waits == ["0.3", "0.6", "1.2"]
    assert took >= BACKOFF * (2 ** RETRIES - 1)
    job = _job(output_cluster, job_id)
    assert (job["state"], job["state_reason"]) == ("held", "printer-unreachable")
    assert _copies_at(printer, data) == 0
    # The printer is back: the user releases again and it prints, once.
    token = _session(output_cluster, printer)
    assert release(output_cluster, token, {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
    assert _copies_at(printer, data) == 1


def test_a_printer_that_comes_back_during_the_retries_gets_the_job_once(output_cluster):
    printer = _printer(output_cluster, 1)
    data = os.urandom(20_000)
    job_id = submit(output_cluster, "alice", data).json()["id"]
    output_cluster.sim.control.sink(printer["id"], refuse=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            token = _session(output_cluster, printer)
            pending = pool.submit(release, output_cluster, token, {"jobs": [job_id]})
            wait_for(lambda: _job(output_cluster, job_id)["state"] == "releasing", 10, "the release to start")
            time.sleep(0.5)  # the first try (or two) found the printer off
        finally:
            output_cluster.sim.control.sink(printer["id"], refuse=False)
        answer = pending.result().json()["results"][0]
    assert answer["status"] == "printed", answer
    assert _copies_at(printer, data) == 1
    assert _job(output_cluster, job_id)["state"] == "printed"


def _release_while_the_sink_misbehaves(cluster: LocalCluster, printer: dict, job_id: str,
                                       knob: str) -> tuple[dict, float]:
    """Release `job_id` at `printer` while its sink refuses or stalls; the result and how long it took."""
    cluster.sim.control.sink(printer["id"], **{knob: True})
    try:
        token = _session(cluster, printer)
        started = time.monotonic()
        answer = release(cluster, token, {"jobs": [job_id]}).json()["results"][0]
        return answer, time.monotonic() - started
    finally:
        cluster.sim.control.sink(printer["id"], **{knob: False})


def _job_for_a_busy_printer(cluster: LocalCluster, redis_client, index: int, owner: str):
    """A job held for `owner`, and printer `index` with another job going out (its lock taken)."""
    printer = _printer(cluster, index)
    data = os.urandom(20_000)
    job_id = submit(cluster, owner, data).json()["id"]
    other_job = PrinterLock(redis_client, printer["id"], "another-collector")
    other_job.acquire(1)
    return printer, data, job_id, other_job


def test_a_release_waits_for_a_printer_busy_with_another_job_then_prints(output_cluster, redis_client):
    printer, data, job_id, other_job = _job_for_a_busy_printer(output_cluster, redis_client, 2, "bob")
    try:
        token = _session(output_cluster, printer, "bob")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(release, output_cluster, token, {"jobs": [job_id]})
            time.sleep(2)
            assert _copies_at(printer, data) == 0  # it waits: nothing interleaves with the other job
            other_job.release()
            answer = pending.result().json()["results"][0]
            took = time.monotonic() - started
    finally:
        other_job.release()
    assert answer["status"] == "printed", answer
    assert took >= 2
    assert _copies_at(printer, data) == 1


def test_a_long_wait_for_the_printer_answers_queued_and_prints_when_it_is_free(output_cluster, redis_client):
    printer, data, job_id, other_job = _job_for_a_busy_printer(output_cluster, redis_client, 3, "bob")
    try:
        token = _session(output_cluster, printer, "bob")
        first = release(output_cluster, token, {"jobs": [job_id]}, key="busy-queued-1").json()["results"][0]
        # The terminal is not kept waiting past release_wait_seconds: the job is still on its way.
        assert first["status"] == "queued", first
        assert _job(output_cluster, job_id)["state"] == "releasing"
        assert _copies_at(printer, data) == 0
        time.sleep(1.5)  # within printer_lock_wait_seconds of the release's start
    finally:
        other_job.release()
    wait_for(lambda: _copies_at(printer, data) == 1, 15, "the queued job to print")
    wait_for(lambda: _job(output_cluster, job_id)["state"] == "printed", 10, "the job to be recorded printed")
    # Asking again with the same key gives the final answer, and prints nothing more.
    again = release(output_cluster, token, {"jobs": [job_id]}, key="busy-queued-1").json()["results"][0]
    assert again["status"] == "printed"
    assert _copies_at(printer, data) == 1


def test_a_printer_busy_past_the_wait_leaves_the_job_held_as_printer_busy(output_cluster, redis_client):
    printer, data, job_id, other_job = _job_for_a_busy_printer(output_cluster, redis_client, 4, "carol")
    try:
        token = _session(output_cluster, printer, "carol")
        release(output_cluster, token, {"jobs": [job_id]}, key="busy-held-1")
        wait_for(lambda: _job(output_cluster, job_id)["state"] == "held", LOCK_WAIT + 10,
                 "the release to give up waiting for the printer")
    finally:
        other_job.release()
    job = _job(output_cluster, job_id)
    assert job["state_reason"] == "printer-busy"
    final = release(output_cluster, token, {"jobs": [job_id]}, key="busy-held-1").json()["results"][0]
    assert final["status"] == "printer-busy" and "still held" in final["message"]
    assert _copies_at(printer, data) == 0
    token = _session(output_cluster, printer, "carol")
    assert release(output_cluster, token, {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
    assert _copies_at(printer, data) == 1


def test_a_printer_that_accepts_and_stalls_fails_the_job_without_resending_it(output_cluster):
    printer = _printer(output_cluster, 5)
    data = os.urandom(24 * 1024 * 1024)  # more than the loopback socket buffers hold
    job_id = submit(output_cluster, "alice", data).json()["id"]
    answer, took = _release_while_the_sink_misbehaves(output_cluster, printer, job_id, "stall")
    assert answer["status"] == "print-failed", answer
    assert "stopped accepting data" in answer["message"] or "gave up" in answer["message"]
    assert took < OUTPUT_TIMEOUT + 4  # the worker was not hung
    job = _job(output_cluster, job_id)
    # Part of it reached the printer: failed with the reason, never sent again by itself.
    assert (job["state"], job["state_reason"]) == ("failed", "print-failed")
    time.sleep(1)
    assert len(received(printer)) <= 1 and _copies_at(printer, data) == 0


def test_a_holder_whose_printer_lock_was_taken_over_does_not_send(output_cluster, redis_client):
    """The fencing token is checked: a collector paused past its lock's lease, whose printer another
    holder has taken since, must not send into the other holder's job."""
    printer = _printer(output_cluster, 0)
    data = os.urandom(20_000)
    job_id = submit(output_cluster, "alice", data).json()["id"]
    lock_key = keys.printer_lock(printer["id"])
    output_cluster.sim.control.sink(printer["id"], refuse=True)  # keeps the releaser in its retries
    newer = PrinterLock(redis_client, printer["id"], "another-collector")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            token = _session(output_cluster, printer)
            pending = pool.submit(release, output_cluster, token, {"jobs": [job_id]})
            wait_for(lambda: "c1" in (redis_client.get(lock_key) or ""), 10, "c1 to hold the printer lock")
            stale_token = int(redis_client.get(keys.printer_fence(printer["id"])))
            # Its lease lapses (as if c1 had been paused) and another holder takes the printer.
            redis_client.delete(lock_key)
            newer.acquire(1)
            assert newer.token > stale_token
            output_cluster.sim.control.sink(printer["id"], refuse=False)  # the printer would take it now
            answer = pending.result().json()["results"][0]
        finally:
            output_cluster.sim.control.sink(printer["id"], refuse=False)
            newer.release()
    assert answer["status"] == "printer-busy", answer
    assert _copies_at(printer, data) == 0  # nothing went into the other holder's job
    job = _job(output_cluster, job_id)
    assert (job["state"], job["state_reason"]) == ("held", "printer-busy")
    token = _session(output_cluster, printer)
    assert release(output_cluster, token, {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
    assert _copies_at(printer, data) == 1
