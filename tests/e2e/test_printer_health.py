"""Every hard printer error refuses the release with its reason and loses nothing; warnings let it through."""

from __future__ import annotations

import os
import time

import pytest
import requests

from tests.e2e.conftest import (
    analyst_call,
    analyst_get,
    login,
    received_hashes,
    release,
    sha,
    submit,
    tls,
    user,
    wait_for,
)

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
        listing = requests.get(f"{cluster.lb_url}/api/v1/sessions/{session['session']}", timeout=5,
                               **tls(cluster)).json()
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


def test_pollers_report_status_changes_to_the_analyst_event_log(cluster):
    printer = cluster.printers[1]["id"]

    def status() -> dict:
        return analyst_get(cluster, f"/printers/{printer}")["printer"].get("status") or {}

    cluster.sim.control.set_fault(printer, "door-open")
    try:
        wait_for(lambda: status().get("reason") == "printer-error:door-open", 20, "the door-open status")
        assert status()["state"] == "error"
    finally:
        cluster.sim.control.clear(printer)
    wait_for(lambda: status().get("state") == "ok", 20, "the printer to be reported healthy again")
    events = analyst_get(cluster, "/events?kind=printer-status&limit=200")["events"]
    reasons = [e["detail"].get("reason") for e in events if e["printer"] == printer]
    assert "printer-error:door-open" in reasons


def test_printer_out_of_service_is_refused_and_the_job_stays(cluster):
    bob = user(cluster, "bob")
    printer = cluster.printers[0]["id"]
    data = os.urandom(5_000)
    job_id = submit(cluster, "bob", data).json()["id"]
    answer = analyst_call(cluster, "PUT", f"/printers/{printer}/service",
                          json={"in_service": False, "reason": "toner being replaced"})
    assert answer.status_code == 200
    try:
        session = login(cluster, printer, badge=bob["badge"]).json()
        result = release(cluster, session["session"], {"jobs": [job_id]}).json()["results"][0]
        assert result["status"] == "printer-out-of-service"
        assert sha(data) not in received_hashes(cluster.printers[0])
    finally:
        analyst_call(cluster, "PUT", f"/printers/{printer}/service", json={"in_service": True, "reason": ""})
    assert release(cluster, session["session"], {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
