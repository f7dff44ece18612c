"""Enrolled terminals and login throttling on a real cluster: the probes of issue 9 fail.

- 30 wrong badges in a row from one terminal: after the free ones, 429 (then 423) with retry_after.
- A login with a terminal's credential binds the session to that terminal and its printer; the
  session token used from any other terminal is refused, and so is a body naming another printer.
- A revoked terminal is refused by the analyst at once, and by every collector within one sync.
- An enrollment link works once.
- With Redis and the analyst both away, each collector process still throttles on its own.
- Unknown badges, unknown users and wrong PINs get the same answer.

This module runs its own cluster: it spends failures on purpose, and a site that refuses unenrolled
terminals (the default outside the demo).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
import requests

from localcluster.cluster import LocalCluster
from pullprint.credentials import token_digest
from tests.e2e.conftest import analyst_call, cluster_state_dir, received_hashes, sha, submit, user, wait_for

SYNC_SECONDS = 5  # the collectors' directory sync in this cluster (30 s by default)
WORKERS = 2       # gunicorn workers per collector: offline, each one counts failures on its own


@pytest.fixture(scope="module")
def site():
    state = cluster_state_dir()
    # Address limits out of the way: every client here is 127.0.0.1 (tests/unit and tests/analyst
    # cover them); the terminal and user limits keep their defaults.
    env = {"PULLPRINT_COLLECTOR_ALLOW_UNENROLLED_TERMINALS": "0",
           "PULLPRINT_COLLECTOR_DIRECTORY_SYNC_SECONDS": str(SYNC_SECONDS),
           "PULLPRINT_COLLECTOR_WORKERS": str(WORKERS),
           "PULLPRINT_COLLECTOR_LOGIN_FAILURES_PER_ADDRESS": "100000",
           "PULLPRINT_ANALYST_LOGIN_FAILURES_PER_ADDRESS": "100000"}
    with LocalCluster(state, n_collectors=2, n_printers=2, with_cupsd=False, extra_env=env) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def enrol(site: LocalCluster, printer: str) -> tuple[str, str]:
    """A new terminal at `printer` (administration at the analyst): (its id, its token)."""
    answer = analyst_call(site, "POST", "/terminals", json={"printer": printer, "description": "test station"})
    assert answer.status_code == 201, answer.text
    return answer.json()["terminal"]["id"], answer.json()["token"]


def known_everywhere(site: LocalCluster, token: str, present: bool = True) -> None:
    """Wait until every collector's synced directory does (or no longer does) hold the terminal."""
    def synced() -> bool:
        for collector in site.collectors.values():
            try:
                text = (Path(collector.spool_dir) / "directory.json").read_text()
            except OSError:
                return False
            if (token_digest(token) in text) != present:
                return False
        return True
    wait_for(synced, 3 * SYNC_SECONDS + 5, "the collectors' directory sync")


def terminal_call(site: LocalCluster, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{site.lb_url}/api/v1{path}", headers=headers, timeout=20,
                            verify=site.ca_file or True, **kwargs)


def log_in(site: LocalCluster, token: str | None, **body: str) -> requests.Response:
    return terminal_call(site, "POST", "/sessions", token, json=body)


def test_thirty_wrong_badges_from_one_terminal_are_throttled(site):
    """The probe: 30 wrong badges in a row from one terminal were all 401, never 423."""
    _, token = enrol(site, "p1")
    known_everywhere(site, token)
    answers = [log_in(site, token, badge=f"{secrets.randbelow(10**10):010d}") for _ in range(30)]
    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [401] * 10
    assert all(s in (429, 423) for s in statuses[10:]), statuses
    for answer in answers[10:]:
        assert answer.json()["retry_after"] >= 1
        assert answer.headers["Retry-After"] == str(answer.json()["retry_after"])
    # The terminal is slowed for everyone while it waits; alice's badge works at another terminal.
    alice = user(site, "alice")
    assert log_in(site, token, badge=alice["badge"]).status_code in (429, 423)
    assert log_in(site, site.printers[0]["terminal_token"], badge=alice["badge"]).status_code == 201


def test_a_terminal_login_binds_the_session_to_that_terminal_and_printer(site):
    bob = user(site, "bob")
    p2 = site.printers[1]
    token = p2["terminal_token"]
    other = site.printers[0]["terminal_token"]
    data = os.urandom(20_000)
    job = submit(site, "bob", data).json()["id"]

    # The printer comes from the credential; a body naming another one is refused, not obeyed.
    wrong = log_in(site, token, printer="p1", badge=bob["badge"])
    assert (wrong.status_code, wrong.json()["error"]) == (403, "wrong-printer")
    answer = log_in(site, token, badge=bob["badge"])
    assert answer.status_code == 201, answer.text
    assert answer.json()["printer"] == "p2"
    session = answer.json()["session"]
    assert job in {j["id"] for j in answer.json()["jobs"]}

    # A stolen session token is no use from another terminal, or from no terminal at all.
    for thief in (other, None):
        assert terminal_call(site, "GET", f"/sessions/{session}", thief).status_code in (401, 403)
        stolen = terminal_call(site, "POST", f"/sessions/{session}/release", thief, json={"jobs": [job]})
        assert stolen.status_code in (401, 403)
    assert terminal_call(site, "GET", f"/sessions/{session}", other).json()["error"] == "wrong-terminal"
    assert sha(data) not in received_hashes(p2) + received_hashes(site.printers[0])

    # Its own terminal lists and releases, at its printer.
    assert terminal_call(site, "GET", f"/sessions/{session}", token).status_code == 200
    released = terminal_call(site, "POST", f"/sessions/{session}/release", token, json={"jobs": [job]})
    assert released.json()["results"][0]["status"] == "printed"
    assert received_hashes(p2).count(sha(data)) == 1
    assert terminal_call(site, "DELETE", f"/sessions/{session}", token).json() == {"ended": True}

    # Collectors keep only the credential's digest.
    for collector in site.collectors.values():
        text = (Path(collector.spool_dir) / "directory.json").read_text()
        assert token not in text and token_digest(token) in text


def test_an_unenrolled_client_is_refused_where_the_site_says_so(site):
    alice = user(site, "alice")
    answer = log_in(site, None, printer="p1", badge=alice["badge"])
    assert (answer.status_code, answer.json()["error"]) == (401, "terminal-not-enrolled")
    forged = log_in(site, "not-a-terminal-token", badge=alice["badge"])
    assert (forged.status_code, forged.json()["error"]) == (401, "terminal-unknown")


def test_a_revoked_terminal_is_refused_within_one_sync(site):
    carol = user(site, "carol")
    terminal_id, token = enrol(site, "p1")
    known_everywhere(site, token)
    session = log_in(site, token, badge=carol["badge"]).json()["session"]
    assert analyst_call(site, "DELETE", f"/terminals/{terminal_id}").status_code == 200
    revoked_at = time.monotonic()
    # A login is refused at once: the analyst knows.
    answer = log_in(site, token, badge=carol["badge"])
    assert (answer.status_code, answer.json()["error"]) == (403, "terminal-revoked")
    # The open session, and the credential itself, stop working everywhere within one sync.
    wait_for(lambda: terminal_call(site, "GET", f"/sessions/{session}", token).status_code == 401,
             SYNC_SECONDS + 3, "the revoked terminal to be refused")
    assert time.monotonic() - revoked_at <= SYNC_SECONDS + 3
    known_everywhere(site, token, present=False)
    time.sleep(0.6)  # each worker looks at its collector's synced file twice a second
    for _ in range(2):  # whichever collector answers (each miss counts against this address's terminal)
        refused = terminal_call(site, "GET", f"/sessions/{session}", token)
        assert (refused.status_code, refused.json()["error"]) == (401, "terminal-unknown")


def test_an_enrollment_link_enrols_a_kiosk_page_once(site):
    alice = user(site, "alice")
    terminal_id, first_token = enrol(site, "p2")
    link = analyst_call(site, "POST", f"/terminals/{terminal_id}/enrollment").json()
    page = requests.get(f"{site.lb_url}{link['path'].split('#')[0]}", timeout=10, verify=site.ca_file or True)
    assert page.status_code == 200 and '<script src="/static/enroll.js"' in page.text
    script = requests.get(f"{site.lb_url}/static/enroll.js", timeout=10, verify=site.ca_file or True)
    assert script.status_code == 200 and "/api/v1/terminals/enroll" in script.text  # the page redeems the code
    redeemed = terminal_call(site, "POST", "/terminals/enroll", None, json={"code": link["code"]})
    assert redeemed.status_code == 201, redeemed.text
    assert (redeemed.json()["terminal"]["id"], redeemed.json()["terminal"]["printer"]) == (terminal_id, "p2")
    token = redeemed.json()["token"]
    # The new credential logs in at once (a collector that does not know it yet syncs early).
    assert log_in(site, token, badge=alice["badge"]).json()["printer"] == "p2"
    again = terminal_call(site, "POST", "/terminals/enroll", None, json={"code": link["code"]})
    assert (again.status_code, again.json()["error"]) == (403, "enrollment-refused")
    # The credential it replaced is gone from the next sync.
    known_everywhere(site, first_token, present=False)
    assert log_in(site, first_token, badge=alice["badge"]).status_code == 401


def test_unknown_badge_unknown_user_and_wrong_pin_get_the_same_answer(site):
    _, token = enrol(site, "p1")
    known_everywhere(site, token)
    answers = [log_in(site, token, badge="9999999999"), log_in(site, token, user="alice", pin="000000"),
               log_in(site, token, user="nobody", pin="000000")]
    assert {a.status_code for a in answers} == {401}
    assert answers[0].json() == answers[1].json() == answers[2].json()


def test_weak_pins_are_refused_and_the_demo_users_pass(site):
    answer = analyst_call(site, "POST", "/users", json={"name": "dave", "pin": "123456"})
    assert (answer.status_code, answer.json()["error"]) == (400, "weak-pin")
    for person in site.describe()["users"]:
        assert analyst_call(site, "POST", "/users", json={"name": person["name"], "pin": person["pin"]}
                            ).status_code == 200
    badges = sorted(int(u["badge"]) for u in site.describe()["users"])
    assert all(b - a > 1 for a, b in zip(badges, badges[1:], strict=False))  # not sequential
    assert json.loads((site.state_dir / "cluster.json").read_text())["printers"][0]["terminal_token"]


def test_with_redis_and_the_analyst_away_each_process_still_throttles(site):
    _, token = enrol(site, "p2")
    known_everywhere(site, token)
    site.stop_redis(kill=True)
    site.stop_analyst(kill=True)
    try:
        answers = []
        for _ in range(80):
            answer = log_in(site, token, badge=f"{secrets.randbelow(10**10):010d}")
            answers.append((answer.status_code, answer.json()))
        statuses = [status for status, _ in answers]
        assert set(statuses) <= {401, 429, 423}, answers
        # Each process lets 10 through, then waits 2 s, 4 s, … on its own (per process: documented).
        processes = len(site.collectors) * WORKERS
        assert statuses.count(401) <= processes * 10 + processes * 3, statuses
        assert statuses[-10:].count(401) <= processes, statuses
        assert all(body["retry_after"] >= 1 for status, body in answers if status in (429, 423))
        # The terminal's real users are throttled along with it, but other terminals are not.
        alice = user(site, "alice")
        assert log_in(site, site.printers[1]["terminal_token"], badge=alice["badge"]).status_code == 201
    finally:
        site.start_redis_again()
        site.start_analyst_again()
