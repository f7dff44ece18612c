"""The release station as a person at a kiosk uses it, in Chromium, each step checked against the cluster.

What the page shows is compared with what really happened: the bytes the simulated printer
received, the job's state at the analyst, the copies in the collectors' spools, whether the
collectors still accept the session.
"""

from __future__ import annotations

import concurrent.futures
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from collector.printer_lock import PrinterLock
from tests.browser.conftest import SESSION_IDLE_SECONDS, open_station, pdf, postscript, shoot, terminal_of
from tests.e2e.conftest import analyst_call, login, received_hashes, release, sha, submit, tls, user, wait_for

pytestmark = pytest.mark.e2e


def job_record(cluster, job_id: str) -> dict:
    return analyst_call(cluster, "GET", f"/jobs/{job_id}").json()["job"]


def submit_job(cluster, owner: str, data: bytes, title: str, options: str = "", copies: int = 1) -> str:
    headers = {"X-Pullprint-Copies": str(copies)}
    if options:
        headers["X-Pullprint-Options"] = options
    answer = submit(cluster, owner, data, title=title, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def clear_jobs(cluster, name: str) -> None:
    """Delete whatever `name` still holds, so each test starts from its own jobs."""
    for job in analyst_call(cluster, "GET", f"/users/{name}/jobs").json()["jobs"]:
        if job["state"] in ("held", "failed"):
            analyst_call(cluster, "DELETE", f"/jobs/{job['id']}", json={"reason": "test set-up"})


def row(page, job_id: str):
    return page.locator(f'li.job[data-job="{job_id}"]')


def badge_in(page, badge: str) -> None:
    """What a keyboard-wedge reader does: type the digits and Enter, wherever the focus is."""
    page.keyboard.type(badge, delay=15)
    page.keyboard.press("Enter")
    page.wait_for_selector("#jobs:not([hidden])", timeout=10000)


def spool_files(cluster, job_id: str) -> list[Path]:
    return [p for c in cluster.collectors.values() for p in c.spool_dir.rglob(f"{job_id}*")]


def test_the_enrolment_link_opens_a_station_where_no_resource_fails(cluster, browser):
    failures: list[str] = []
    errors: list[str] = []
    browser.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    browser.on("requestfailed", lambda r: failures.append(f"failed {r.url}"))
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    from tests.browser.conftest import enrolment_link

    link = enrolment_link(cluster, "p1")
    response = page.goto(link)
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    page.wait_for_url("**/release", timeout=15000)
    page.wait_for_selector("#printer-state.state-ok", timeout=10000)
    assert "#code=" not in page.url and "code" not in page.url  # the code left the address bar
    assert page.locator("#printer-name").inner_text() == "p1"
    assert "Building A" in page.locator("#printer-location").inner_text()
    # The credential works against the cluster itself: a login from this terminal is for p1.
    token = terminal_of(page)["token"]
    alice = user(cluster, "alice")
    answer = requests.post(f"{cluster.lb_url}/api/v1/sessions", json={"badge": alice["badge"]},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10, **tls(cluster))
    assert answer.status_code == 201 and answer.json()["printer"] == "p1"
    page.reload()
    page.wait_for_selector("#printer-state.state-ok")
    time.sleep(0.5)
    assert failures == [] and errors == []
    assert hosts == {cluster.lb_url.split("/")[2]}  # nothing from another origin
    shoot(page, "login")


def test_a_badge_reader_types_into_the_station_after_hours_idle_and_selected_jobs_print(cluster, browser):
    clear_jobs(cluster, "alice")
    alice = user(cluster, "alice")
    report, notes = pdf(3, "quarterly"), postscript(2, "notes")
    report_id = submit_job(cluster, "alice", report, "Quarterly report", "sides=two-sided-long-edge media=A4")
    notes_id = submit_job(cluster, "alice", notes, "Meeting notes", "print-color-mode=color", copies=2)
    browser.clock.install()  # the page's own timers, to let hours pass
    page = open_station(browser, cluster, "p1")
    # The focus wanders off (a tap on the header) and the kiosk stands idle for hours.
    page.locator("header").click()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.clock.fast_forward("03:00:00")
    badge_in(page, alice["badge"])
    assert page.locator("#jobs-title").inner_text() == "Welcome, alice"
    report_row, notes_row = row(page, report_id), row(page, notes_id)
    facts = report_row.locator(".facts").inner_text()
    assert "3 pages" in facts and "two-sided" in facts and "black & white" in facts and "A4" in facts
    assert "1 copy" in facts and re.search(r"\d+ B|kB", facts) and "sent " in facts and "expires " in facts
    facts = notes_row.locator(".facts").inner_text()
    assert "2 pages" in facts and "2 copies" in facts and "colour" in facts and "one-sided" in facts
    assert report_row.locator(".title").inner_text() == "Quarterly report"
    shoot(page, "jobs")
    # Only the report: untick the notes, print the selection.
    notes_row.locator("input[type=checkbox]").uncheck()
    page.click("#release-selected")
    page.wait_for_selector(f'#result-list li[data-job="{report_id}"]')
    assert page.locator(f'#result-list li[data-job="{report_id}"] .what').inner_text() == "Printed"
    assert page.locator("#result-list li").count() == 1
    wait_for(lambda: sha(report) in received_hashes(cluster.printers[0]), 10, "the report at p1")
    assert job_record(cluster, report_id)["state"] == "printed"
    assert job_record(cluster, notes_id)["state"] == "held"
    assert sha(notes) not in received_hashes(cluster.printers[0])
    # The list now holds only the notes, still offered.
    page.wait_for_selector(f'li.job[data-job="{report_id}"]', state="detached")
    assert row(page, notes_id).count() == 1
    shoot(page, "printed")


def test_user_name_and_pin_on_the_on_screen_keyboard_then_print_all(cluster, browser):
    clear_jobs(cluster, "bob")
    bob = user(cluster, "bob")
    first, second = pdf(1, "first"), pdf(4, "second")
    ids = [submit_job(cluster, "bob", first, "Boarding pass"), submit_job(cluster, "bob", second, "Contract")]
    page = open_station(browser, cluster, "p2")
    page.click("#show-pin")
    for letter in bob["name"]:
        page.click(f'#keys button[data-key="{letter}"]')
    page.click('#keys button[data-key="→"]')
    assert page.locator("#keys.digits").count() == 1  # the PIN gets a numeric keypad
    shoot(page, "pin")
    for digit in bob["pin"]:
        page.click(f'#keys button[data-key="{digit}"]')
    assert page.locator("#user").input_value() == "bob"
    page.click("#pin-login")
    page.wait_for_selector("#jobs:not([hidden])")
    assert page.locator("#jobs-title").inner_text() == "Welcome, bob"
    assert "1 page" in row(page, ids[0]).inner_text() and "4 pages" in row(page, ids[1]).inner_text()
    page.click("#release-all")
    page.wait_for_selector("#results:not([hidden])")
    whats = page.locator("#result-list li .what").all_inner_texts()
    assert whats == ["Printed", "Printed"]
    assert page.locator("#results-summary").inner_text() == "2 printed, 0 queued, 0 not printed."
    wait_for(lambda: {sha(first), sha(second)} <= set(received_hashes(cluster.printers[1])), 10, "both at p2")
    assert [job_record(cluster, i)["state"] for i in ids] == ["printed", "printed"]
    page.wait_for_selector("#jobs-note:has-text('You have no jobs waiting.')")


def guest_submit(cluster, sender: str, data: bytes, title: str) -> str:
    """A guest's document as the mail gateway hands it in (the sender's address, not a user name); its code."""
    answer = requests.post(f"{cluster.lb_url}/api/v1/jobs", data=data, timeout=30, **tls(cluster), headers={
        "Authorization": f"Bearer {cluster.secret('submit_token')}", "X-Pullprint-Owner-Email": sender,
        "X-Pullprint-Title": title, "Content-Type": "application/octet-stream"})
    assert answer.status_code == 201, answer.text
    return answer.json()["release_code"]


def test_a_guest_types_the_release_code_on_the_keypad_and_only_that_document_prints(cluster, browser):
    boarding, agenda = pdf(2, "guest boarding pass"), pdf(1, "guest agenda")
    code = guest_submit(cluster, "visitor@partner.example", boarding, "Boarding pass")
    guest_submit(cluster, "visitor@partner.example", agenda, "Agenda")
    page = open_station(browser, cluster, "p1")
    page.click("#show-code")
    assert page.locator("#code-keys.digits").count() == 1 and page.locator("#badge-form").is_hidden()
    # Too short: said so, nothing asked of the cluster.
    page.fill("#code", code[:6])
    page.click("#code-login")
    page.wait_for_selector("#message:has-text('A release code has 10 digits.')")
    page.fill("#code", "")
    for digit in code:
        page.click(f'#code-keys button[data-key="{digit}"]')
    assert page.locator("#code").input_value() == code
    page.click("#code-login")
    page.wait_for_selector("#jobs:not([hidden])")
    assert page.locator("#jobs-title").inner_text() == "Your document"
    assert page.locator("#list li.job .title").all_inner_texts() == ["Boarding pass"]  # not the guest's other one
    page.click("#release-all")
    page.wait_for_selector("#results:not([hidden])")
    assert page.locator("#result-list li .what").all_inner_texts() == ["Printed"]
    hashes = wait_for(lambda: received_hashes(cluster.printers[0]) if sha(boarding) in received_hashes(
        cluster.printers[0]) else None, 10, "the boarding pass at p1")
    assert hashes.count(sha(boarding)) == 1 and sha(agenda) not in hashes
    # The code was single-use: typed again, it is refused and the station stays at its login.
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    page.click("#show-code")
    page.fill("#code", code)
    page.click("#code-login")
    page.wait_for_selector("#message.error")
    assert page.locator("#jobs").is_hidden()


def test_deleting_a_job_shreds_every_copy_and_the_analyst_records_it(cluster, browser):
    clear_jobs(cluster, "carol")
    carol = user(cluster, "carol")
    data = pdf(2, "draft")
    keep = submit_job(cluster, "carol", pdf(1, "keep"), "Keep me")
    doomed = submit_job(cluster, "carol", data, "Wrong draft")
    wait_for(lambda: len(spool_files(cluster, doomed)) >= 2, 10, "the copies of the job")
    page = open_station(browser, cluster, "p1")
    badge_in(page, carol["badge"])
    row(page, doomed).locator("button.delete").click()
    assert "Wrong draft" in page.locator("#delete-question").inner_text()
    shoot(page, "delete")
    page.click("#delete-yes")
    page.wait_for_selector(f'li.job[data-job="{doomed}"]', state="detached")
    assert page.locator("#message").inner_text() == "Deleted."
    record = job_record(cluster, doomed)
    assert record["state"] == "deleted"
    events = analyst_call(cluster, "GET", f"/events?job={doomed}").json()["events"]
    assert any(e["kind"] == "delete" and e["detail"]["by"] == "carol" for e in events)
    wait_for(lambda: spool_files(cluster, doomed) == [], 10, "every copy shredded")
    assert job_record(cluster, keep)["state"] == "held" and row(page, keep).count() == 1
    assert sha(data) not in received_hashes(cluster.printers[0])


def test_a_jammed_printer_refuses_and_the_station_suggests_the_one_nearby(cluster, browser):
    clear_jobs(cluster, "alice")
    alice = user(cluster, "alice")
    data = pdf(2, "jam")
    job_id = submit_job(cluster, "alice", data, "Handout")
    page = open_station(browser, cluster, "p1")
    cluster.sim.control.set_fault("p1", "jam")
    try:
        token = terminal_of(page)["token"]
        wait_for(lambda: requests.get(f"{cluster.lb_url}/api/v1/printers/p1/status", timeout=5, **tls(cluster),
                                      headers={"Authorization": f"Bearer {token}"}).json()["state"] == "error",
                 10, "the collectors to see the jam")
        page.reload()  # the state is read when the page loads (and every 30 s)
        page.wait_for_selector("#printer-state.state-error", timeout=15000)
        assert page.locator("#printer-state-text").inner_text() == "Not ready"
        assert "paper jam" in page.locator("#printer-state-detail").inner_text()
        badge_in(page, alice["badge"])
        page.click("#release-all")
        page.wait_for_selector("#results:not([hidden])")
        result = page.locator(f'#result-list li[data-job="{job_id}"]')
        assert result.get_attribute("data-status") == "printer-error:jammed"
        assert result.locator(".what").inner_text() == "Not printed"
        assert result.locator(".why").inner_text() == "The printer has a paper jam"
        suggestion = page.locator("#suggestion")
        assert suggestion.is_visible() and "p2" in suggestion.inner_text() and "floor 2" in suggestion.inner_text()
        shoot(page, "refused")
        assert job_record(cluster, job_id)["state"] == "held"
        assert sha(data) not in received_hashes(cluster.printers[0])
        assert row(page, job_id).count() == 1  # still there to print elsewhere
    finally:
        cluster.sim.control.clear("p1")


def test_a_slow_printer_leaves_the_job_queued_and_it_prints_shortly(cluster, browser):
    from tests.browser.conftest import RELEASE_WAIT_SECONDS

    clear_jobs(cluster, "carol")
    carol = user(cluster, "carol")
    data = pdf(6, "slow")
    job_id = submit_job(cluster, "carol", data, "Long handbook")
    page = open_station(browser, cluster, "p1")
    badge_in(page, carol["badge"])
    cluster.sim.control.sink("p1", delay_seconds=RELEASE_WAIT_SECONDS + 3)  # takes the bytes late
    try:
        page.click("#release-all")
        page.wait_for_selector(f'#result-list li[data-job="{job_id}"]', timeout=(RELEASE_WAIT_SECONDS + 10) * 1000)
        result = page.locator(f'#result-list li[data-job="{job_id}"]')
        assert result.get_attribute("data-status") == "queued"
        assert result.locator(".what").inner_text() == "Queued: prints shortly"
        assert job_record(cluster, job_id)["state"] == "releasing"  # really still going out
        # The list says so too: the job is being released, not offered again.
        assert "being released" in row(page, job_id).locator(".tag").inner_text()
        wait_for(lambda: job_record(cluster, job_id)["state"] == "printed", 30, "the queued job to print")
    finally:
        cluster.sim.control.sink("p1", delay_seconds=0)
    assert received_hashes(cluster.printers[0]).count(sha(data)) == 1


def test_an_interrupted_release_waits_for_the_users_confirmation(cluster, browser):
    clear_jobs(cluster, "bob")
    bob = user(cluster, "bob")
    data = pdf(1, "interrupted")
    job_id = submit_job(cluster, "bob", data, "Ticket")
    printer = cluster.printers[0]
    # Another job holds p1 while a first release waits for it: its lease lapses into "interrupted".
    busy = PrinterLock(cluster.redis_client(), printer["id"], "another-job", lease_seconds=90)
    busy.acquire(5)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        first = login(cluster, printer["id"], badge=bob["badge"]).json()["session"]
        waiting = pool.submit(release, cluster, first, {"jobs": [job_id]})
        wait_for(lambda: job_record(cluster, job_id)["state"] == "releasing", 10, "the first release")
        first_claim = job_record(cluster, job_id)["claim"]["token"]

        def interrupted() -> bool:
            analyst_call(cluster, "POST", "/maintenance/expire")
            return job_record(cluster, job_id)["state_reason"] == "interrupted"

        wait_for(interrupted, 20, "the lease to lapse")
        page = open_station(browser, cluster, "p1")
        badge_in(page, bob["badge"])
        job_row = row(page, job_id)
        assert job_row.locator("input[type=checkbox]").is_disabled()
        assert "interrupted" in job_row.locator(".tag").inner_text()
        shoot(page, "interrupted")
        assert page.locator("#release-all").is_disabled()  # "all" never includes an interrupted job
        # The user has looked at the tray and confirms: a new claim, which fences the first one out.
        job_row.locator("button.confirm").click()
        wait_for(lambda: (job_record(cluster, job_id).get("claim") or {}).get("token", 0) > first_claim, 10,
                 "the confirmed release's claim")
        busy.release()  # the printer frees up: both releasers go for it, only the new claim sends
        page.wait_for_selector(f'#result-list li[data-job="{job_id}"][data-status="printed"]', timeout=30000)
        first_answer = waiting.result(timeout=90)
        assert first_answer.json()["results"][0]["status"] != "printed"
    finally:
        busy.release()
        pool.shutdown(wait=True)
    wait_for(lambda: sha(data) in received_hashes(printer), 10, "the confirmed job at p1")
    time.sleep(1)
    assert received_hashes(printer).count(sha(data)) == 1
    assert job_record(cluster, job_id)["state"] == "printed"


def test_the_countdown_runs_out_and_the_session_is_over_at_the_cluster(cluster, browser):
    alice = user(cluster, "alice")
    page = open_station(browser, cluster, "p2")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/sessions") and r.status == 201) as created:
        badge_in(page, alice["badge"])
    session = created.value.json()["session"]
    token = terminal_of(page)["token"]
    first = int(re.search(r"\d+", page.locator("#countdown").inner_text()).group())
    assert 5 <= first <= SESSION_IDLE_SECONDS
    time.sleep(2.5)
    later = int(re.search(r"\d+", page.locator("#countdown").inner_text()).group())
    assert later < first
    with page.expect_response(lambda r: r.request.method == "DELETE" and session in r.url,
                              timeout=(SESSION_IDLE_SECONDS + 10) * 1000) as ended:
        page.wait_for_selector("#login:not([hidden])", timeout=(SESSION_IDLE_SECONDS + 10) * 1000)
    assert ended.value.status == 200  # the page logged out itself, before the collectors' own timeout
    assert page.locator("#message").inner_text() == "You were logged out after a while without activity."
    assert page.evaluate("document.activeElement.id") == "badge"
    answer = requests.get(f"{cluster.lb_url}/api/v1/sessions/{session}", headers={"Authorization": f"Bearer {token}"},
                          timeout=10, **tls(cluster))
    assert answer.status_code == 401 and answer.json()["error"] == "session-ended"


def test_a_login_whose_answer_is_cut_off_is_sent_once_more(cluster, browser):
    alice = user(cluster, "alice")
    page = open_station(browser, cluster, "p1")
    attempts: list[int] = []

    def cut_the_first(route: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            route.fetch()  # the cluster did log in; the answer never reaches the page
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/sessions", cut_the_first)
    badge_in(page, alice["badge"])
    assert len(attempts) == 2
    assert page.locator("#jobs-title").inner_text() == "Welcome, alice"


def test_keyboard_only_with_labels_and_the_german_station(cluster, browser):
    clear_jobs(cluster, "carol")
    carol = user(cluster, "carol")
    job_id = submit_job(cluster, "carol", pdf(5, "de"), "Bericht")
    page = open_station(browser, cluster, "p2", query="?lang=de")
    assert page.url.endswith("/release?lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("#login-title").inner_text() == "Halten Sie Ihren Ausweis an das Lesegerät"
    # Every field has a label; every button has a name.
    unlabelled = page.evaluate("""Array.from(document.querySelectorAll('input')).filter(i =>
        !(i.labels && i.labels.length) && !i.getAttribute('aria-label')).map(i => i.id)""")
    assert unlabelled == []
    # Keyboard only: Tab to "no badge", Enter, type name, Tab to the PIN, type it, Enter.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "show-pin"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "user"
    page.keyboard.type(carol["name"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "pin"
    page.keyboard.type(carol["pin"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#jobs:not([hidden])")
    assert page.locator("#jobs-title").inner_text() == "Willkommen, carol"
    assert "5 Seiten" in row(page, job_id).inner_text()
    shoot(page, "jobs-de")
    # Text and buttons meet WCAG AA contrast (4.5:1) against what they sit on.
    worst = page.evaluate(CONTRAST)
    assert worst >= 4.5, worst
    page.focus("#logout")
    page.keyboard.press("Enter")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#message").inner_text() == "Sie wurden abgemeldet."


# The lowest contrast ratio of visible text (buttons, job rows, header) against its background.
CONTRAST = """(() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const bg = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  let worst = 21;
  for (const el of document.querySelectorAll('button, h1, h2, .title, .facts, .hint, label, #printer-state-text')) {
    if (!el.offsetParent || el.disabled) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    worst = Math.min(worst, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05));
  }
  return worst;
})()"""


def test_over_plain_http_the_station_logs_in_and_releases(cluster, playwright, tmp_path):
    """Plain HTTP on a host name that is not local: the page is no secure context, and still works
    (the old page's crypto.randomUUID() made every release fail here)."""
    from tests.browser.conftest import PlainHttpFront, launch

    front = PlainHttpFront(cluster)
    context = launch(playwright, str(tmp_path / "profile"),
                     extra_args=("--host-resolver-rules=MAP kiosk.test 127.0.0.1",))
    try:
        clear_jobs(cluster, "alice")
        alice = user(cluster, "alice")
        data = pdf(2, "plain")
        job_id = submit_job(cluster, "alice", data, "Over plain HTTP")
        page = open_station(context, cluster, "p2", base=f"http://kiosk.test:{front.port}")
        assert page.url.startswith(f"http://kiosk.test:{front.port}/release")
        assert page.evaluate("window.isSecureContext") is False
        assert page.evaluate("typeof crypto.randomUUID") == "undefined"  # what the old page relied on
        badge_in(page, alice["badge"])
        page.click("#release-all")
        page.wait_for_selector(f'#result-list li[data-job="{job_id}"][data-status="printed"]')
        wait_for(lambda: sha(data) in received_hashes(cluster.printers[1]), 10, "the job at p2")
        assert job_record(cluster, job_id)["state"] == "printed"
    finally:
        context.close()
        front.close()


def test_the_kiosk_url_in_cluster_json_opens_an_enrolled_station_once(cluster, browser, playwright, tmp_path):
    """printers[i]["kiosk_url"] (what `pullprint demo` writes): one link per printer, good once."""
    from tests.browser.conftest import launch

    described = {p["id"]: p for p in cluster.describe()["printers"]}
    alice = user(cluster, "alice")
    link = described["p2"]["kiosk_url"]
    assert link.startswith(f"{cluster.lb_url}/release/enroll#code=")
    page = browser.new_page()
    page.goto(link)
    page.wait_for_url("**/release", timeout=15000)
    assert page.locator("#printer-name").inner_text() == "p2"
    with page.expect_response(lambda r: r.url.endswith("/api/v1/sessions") and r.status == 201) as created:
        badge_in(page, alice["badge"])
    assert created.value.json()["printer"] == "p2"
    # Its own terminal: the printer's terminal_token (the API's credential) still works.
    answer = requests.post(f"{cluster.lb_url}/api/v1/sessions", json={"badge": alice["badge"]}, timeout=10,
                           headers={"Authorization": f"Bearer {described['p2']['terminal_token']}"}, **tls(cluster))
    assert answer.status_code == 201 and answer.json()["printer"] == "p2"
    # The same link again: on this station it says so and leads back; anywhere else it enrols nothing.
    page.goto(link)
    page.wait_for_selector("#open-station:not([hidden])")
    assert "already used" in page.locator("#message").inner_text()
    other = launch(playwright, str(tmp_path / "other"))
    try:
        stranger = other.new_page()
        stranger.goto(link)
        stranger.wait_for_selector("#message.error")
        assert stranger.evaluate("localStorage.getItem('pullprint.terminal')") is None
    finally:
        other.close()
