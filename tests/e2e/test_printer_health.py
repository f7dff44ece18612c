"""Every hard printer error refuses the release with its reason and loses nothing; warnings let it through."""

from __future__ import annotations

import os
import time

import pytest
import requests

from tests.e2e.conftest import login, received_hashes, release, sha, submit, user

HARD = {
    "paper-out": "printer-error:media-empty",
    "jam": "printer-error:jammed",
    "door-open": "printer-error:door-open",
    "offline": "printer-error:offline",
    "toner-empty": "printer-error:toner-empty",
    "output-full": "printer-error:output-full",
}


@pytest.mark.parametrize("fault", sorted(HARD))
def test_hard_error_refuses_release_and_keeps_the_job(cluster, fault):
    bob = user(cluster, "bob")
    printer, other = cluster.printers[0], cluster.printers[1]
    data = os.urandom(8_000)
    job_id = submit(cluster, "bob", data).json()["id"]
    cluster.sim.control.set_fault(printer["id"], fault)
    try:
        time.sleep(0.6)  # older than health_max_age: the release checks the printer afresh
        session = login(cluster, printer["id"], badge=bob["badge"]).json()
        answer = release(cluster, session["session"], {"jobs": [job_id]}).json()
        assert answer["results"][0]["status"] == HARD[fault]
        assert answer["results"][0]["message"]
        # The nearest healthy printer with the same capabilities is suggested.
        assert answer["suggestion"]["id"] == other["id"]
        listing = requests.get(f"{cluster.lb_url}/api/v1/sessions/{session['session']}", timeout=5).json()
        assert [j["available"] for j in listing["jobs"] if j["id"] == job_id] == [True]
        assert sha(data) not in received_hashes(printer)
    finally:
        cluster.sim.control.clear(printer["id"])
    time.sleep(0.6)
    answer = release(cluster, session["session"], {"jobs": [job_id]}).json()
    assert answer["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(data)) == 1


def test_low_toner_is_a_warning_not_a_refusal(cluster):
    bob = user(cluster, "bob")
    printer = cluster.printers[1]
    data = os.urandom(8_000)
    job_id = submit(cluster, "bob", data).json()["id"]
    cluster.sim.control.set_fault(printer["id"], "toner-low")
    try:
        time.sleep(0.6)
        session = login(cluster, printer["id"], badge=bob["badge"]).json()
        result = release(cluster, session["session"], {"jobs": [job_id]}).json()["results"][0]
        assert result["status"] == "printed"
        assert "toner-low" in result["warnings"]
    finally:
        cluster.sim.control.clear(printer["id"])
    assert received_hashes(printer).count(sha(data)) == 1
