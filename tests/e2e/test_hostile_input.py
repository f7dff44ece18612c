"""Hostile input against a running cluster (issue 9): a printer-reconfiguring document is stripped on its
way to the printer or refused with a reason the terminal shows, a crafted job id in a release reaches
nothing but "not-found", and oversized JSON bodies are refused without taking the service down."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from localcluster.cluster import LocalCluster
from tests.e2e.conftest import (
    analyst_call,
    analyst_get,
    cluster_state_dir,
    login,
    release,
    submit,
    tls,
    user,
    wait_for,
)

UEL = b"\x1b%-12345X"
PAGE = b"/Helvetica findfont 24 scalefont setfont 72 720 moveto (Quarterly report) show showpage\n"
HOSTILE = (UEL + b'@PJL JOB NAME="report"\r\n@PJL DEFAULT PASSWORD=4711\r\n@PJL DEFAULT COPIES=99\r\n'
           b"@PJL SET DUPLEX=ON\r\n@PJL ENTER LANGUAGE=POSTSCRIPT\r\n%!PS-Adobe-3.0\n"
           b"serverdict begin 0 exitserver\n/showpage { } def\n" + PAGE + UEL + b"@PJL EOJ\r\n" + UEL)
STRIPPED = (UEL + b'@PJL JOB NAME="report"\r\n@PJL SET DUPLEX=ON\r\n@PJL ENTER LANGUAGE=POSTSCRIPT\r\n'
            b"%!PS-Adobe-3.0\nserverdict begin 0 pop\n/showpage { } def\n" + PAGE + UEL + b"@PJL EOJ\r\n" + UEL)
EVIL = "../collectors/evil/heartbeat#"
TOKENS: list[str] = []  # every session token this module's tests used, looked for in the logs at the end


@pytest.fixture(scope="module")
def cluster():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=2, n_printers=2, with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_HEALTH_MAX_AGE": "0.5"}) as running:
        refusing = next(p for p in running.printers if p["id"] == "p2")
        answer = analyst_call(running, "POST", "/printers",
                              json={"id": "p2", "uri": refusing["uri"], "document_filter": "refuse"})
        assert answer.status_code == 200, answer.text
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _printer(cluster: LocalCluster, printer_id: str) -> dict:
    return next(p for p in cluster.printers if p["id"] == printer_id)


def _prints(printer: dict) -> list[bytes]:
    """Exactly the bytes each connection to the simulated printer carried, oldest first."""
    return [path.read_bytes() for path in sorted(Path(printer["sink_dir"]).glob("*.prn"))]


def _session(cluster: LocalCluster, printer: str, name: str = "alice") -> str:
    answer = login(cluster, printer, badge=user(cluster, name)["badge"])
    assert answer.status_code == 201, answer.text
    TOKENS.append(str(answer.json()["session"]))
    return TOKENS[-1]


def test_device_changing_commands_never_reach_the_printer(cluster: LocalCluster) -> None:
    job = submit(cluster, "alice", HOSTILE, title="report.ps", headers={"Content-Type": "application/postscript"})
    assert job.status_code == 201, job.text
    printer = _printer(cluster, "p1")
    before = len(_prints(printer))
    answer = release(cluster, _session(cluster, "p1"), {"jobs": [job.json()["id"]]})
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "printed", answer.text
    wait_for(lambda: len(_prints(printer)) > before, 10, "the job at the printer")
    arrived = _prints(printer)[-1]
    assert arrived == STRIPPED
    assert b"DEFAULT" not in arrived and b"exitserver" not in arrived


def test_a_refusing_printer_does_not_print_and_the_terminal_says_why(cluster: LocalCluster) -> None:
    job = submit(cluster, "alice", HOSTILE, title="report.ps", headers={"Content-Type": "application/postscript"})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    printer = _printer(cluster, "p2")
    before = len(_prints(printer))
    token = _session(cluster, "p2")
    answer = release(cluster, token, {"jobs": [job_id]})
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert result["status"] == "document-refused:pjl-default"
    assert "pjl-default" in result["message"] and "not printed" in result["message"]
    # The job is failed, with the reason, where the terminal lists it; the printer received nothing.
    listed = requests.get(f"{cluster.lb_url}/api/v1/sessions/{token}", timeout=10, **tls(cluster)).json()["jobs"]
    entry = next(j for j in listed if j["id"] == job_id)
    assert (entry["state"], entry["state_reason"]) == ("failed", "document-refused:pjl-default")
    assert len(_prints(printer)) == before
    # A clean document still prints there.
    clean = submit(cluster, "alice", b"%!PS-Adobe-3.0\n" + PAGE, headers={"Content-Type": "application/postscript"})
    printed = release(cluster, token, {"jobs": [clean.json()["id"]]})
    assert printed.json()["results"][0]["status"] == "printed", printed.text
    wait_for(lambda: len(_prints(printer)) > before, 10, "the clean job at the printer")
    assert _prints(printer)[-1] == b"%!PS-Adobe-3.0\n" + PAGE


def test_a_crafted_job_id_in_a_release_reaches_nothing(cluster: LocalCluster) -> None:
    token = _session(cluster, "p1")
    ids = [EVIL, "../maintenance/expire#", "0" * 32 + "\n", "A" * 32]
    answer = release(cluster, token, {"jobs": ids})
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["not-found"] * len(ids)
    collectors = [c["id"] for c in analyst_get(cluster, "/collectors")["collectors"]]
    assert "evil" not in collectors and sorted(collectors) == ["c1", "c2"]


def test_oversized_and_malformed_bodies_are_refused_and_the_service_stays_up(cluster: LocalCluster) -> None:
    token = _session(cluster, "p1")
    big = b'{"jobs": [' + b'"x",' * 17_000 + b'"x"]}'  # 68 KB: just over the limit, as a client errs
    via_lb = requests.post(f"{cluster.lb_url}/api/v1/sessions/{token}/release", data=big, timeout=10,
                           headers={"Content-Type": "application/json"}, **tls(cluster))
    assert via_lb.status_code == 413 and via_lb.json()["error"] == "body-too-large"
    # Straight at a collector, chunked (no length up front): bounded by what it reads.
    collector = next(iter(cluster.collectors.values())).url
    chunked = requests.post(f"{collector}/api/v1/sessions/{token}/release", timeout=10,
                            data=(big[i:i + 4096] for i in range(0, len(big), 4096)),
                            headers={"Content-Type": "application/json"}, **tls(cluster))
    assert chunked.status_code == 413 and chunked.json()["error"] == "body-too-large"
    too_many = release(cluster, token, {"jobs": [f"{i:032x}" for i in range(501)]})
    assert too_many.status_code == 400 and too_many.json()["error"] == "too-many-jobs"
    malformed = requests.post(f"{cluster.lb_url}/api/v1/sessions", data=b'{"printer": "p1", "badge": ',
                              headers={"Content-Type": "application/json"}, timeout=10, **tls(cluster))
    assert malformed.status_code == 400 and malformed.json()["error"] == "bad-json"
    internal = requests.get(f"{cluster.lb_url}/internal/v1/users/alice/jobs", timeout=10, **tls(cluster))
    assert internal.status_code == 404
    assert requests.get(f"{cluster.lb_url}/api/v1/sessions/{token}", timeout=10, **tls(cluster)).status_code == 200


def test_no_session_token_is_in_any_log(cluster: LocalCluster) -> None:
    # Runs last: the tests above used their sessions through HAProxy and straight at a collector.
    assert TOKENS
    token = _session(cluster, "p1")
    assert requests.get(f"{cluster.lb_url}/api/v1/sessions/{token}", timeout=10, **tls(cluster)).status_code == 200
    wait_for(lambda: "/api/v1/sessions/<redacted>" in Path(cluster.state_dir, "lb", "haproxy.log").read_text(), 10,
             "HAProxy's access log line")
    logs = {path: path.read_text(errors="replace") for path in Path(cluster.state_dir).rglob("*.log")}
    collector_logs = "".join(text for path, text in logs.items() if path.name == "collector.log")
    assert "/api/v1/sessions/<redacted>" in collector_logs  # gunicorn's access lines are there, redacted
    for path, text in logs.items():
        for used in TOKENS:
            assert used not in text, f"a session token in {path}"
