"""The admin console as an operator uses it, in Chromium, through HAProxy's https address; each action
checked against what the cluster really did (HAProxy's server states on its runtime socket, the analyst's
records, a release refused at a printer out of service)."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest

from analyst.cli import console_user_main
from localcluster.cluster import LocalCluster
from tests.e2e.conftest import analyst_call, analyst_get, wait_for

pytestmark = pytest.mark.e2e

READER, READER_PASSWORD = "rita", "rita reads the fleet"


@pytest.fixture(scope="module")
def reader(cluster: LocalCluster) -> str:
    """A read-only console account, added as an operator would: `pullprint console-user add`, password on stdin."""
    code = console_user_main(["add", READER, "--role", "read-only", "--password-stdin",
                              "--db-url", f"sqlite:///{cluster.state_dir / 'analyst.db'}"],
                             stdin=io.StringIO(READER_PASSWORD + "\n"), out=io.StringIO())
    assert code == 0
    return READER


def shoot(page: Any, name: str) -> None:
    """A screenshot for the docs (docs/console.md) when PULLPRINT_SCREENSHOT_DIR is set, never otherwise."""
    import os

    folder = os.environ.get("PULLPRINT_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=True)


def console_url(cluster: LocalCluster) -> str:
    url: str = cluster.describe()["console"]["url"]
    return url


def sign_in(browser: Any, cluster: LocalCluster, name: str | None = None, password: str | None = None) -> Any:
    """Sign in as an operator would; when an earlier test's guessing has this address waiting, wait as told."""
    console = cluster.describe()["console"]
    page = browser.new_page()
    page.goto(console["url"])
    page.wait_for_url("**/console/login")
    for _ in range(4):
        page.fill("#name", name or console["user"])
        page.fill("#password", password or console["password"])
        page.click("#sign-in")
        page.wait_for_load_state()
        error = page.locator("#login-error")
        wait = re.search(r"try again in (\d+) s", error.inner_text()) if error.count() else None
        if not wait:
            return page
        time.sleep(int(wait.group(1)) + 0.5)
    return page


def test_sign_in_through_the_load_balancer_wrong_password_refused_and_throttled(cluster, browser):
    console = cluster.describe()["console"]
    assert console["url"] == f"{cluster.lb_url}/console" and cluster.lb_url.startswith("https://")
    failures: list[str] = []
    browser.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    hosts: set[str] = set()
    page = browser.new_page()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    page.goto(console["url"])
    page.wait_for_url("**/console/login")
    page.fill("#name", console["user"])
    page.fill("#password", "not the password")
    page.click("#sign-in")
    assert page.locator("#login-error").inner_text() == "Wrong name or password."
    assert failures == [f"401 {cluster.lb_url}/console/login"]
    assert page.context.cookies() == []
    page.fill("#password", console["password"])
    page.click("#sign-in")
    page.wait_for_url(console["url"])
    assert page.locator("#operator").inner_text().startswith("admin")
    from pullprint import __version__

    for c in cluster.collectors:
        assert page.locator(f"#collector-{c}").count() == 1
        # What each collector's own heartbeat said of it.
        assert page.locator(f"#version-{c}").inner_text() == __version__
        assert page.locator(f"#spool-{c}").inner_text().isdigit()
        assert page.locator(f"#journal-{c}").inner_text().isdigit()
    # Each printer's supplies with their levels, as the collectors' SNMP poller read them from the printer.
    supply = page.locator(f"#printer-{cluster.printers[0]['id']} .supply-level")
    wait_for(lambda: supply.count() > 0 or page.reload() and False, 20, "the first supplies reading")
    assert "Black Toner Cartridge:" in page.locator(f"#printer-{cluster.printers[0]['id']}").inner_text()
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "__Host-pullprint-console"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert hosts == {cluster.lb_url.split("/")[2]}  # nothing from anywhere else, the stylesheet included
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
    shoot(page, "fleet")
    # Guessing from one address is slowed down: past the free failures even the right password waits.
    guesser = browser.new_page()
    for attempt in range(8):
        guesser.goto(f"{console['url']}/login")
        guesser.fill("#name", console["user"])
        guesser.fill("#password", f"guess {attempt}")
        guesser.click("#sign-in")
        if "Too many failed sign-ins" in guesser.locator("#login-error").inner_text():
            break
    else:
        pytest.fail("eight wrong passwords in a row were never throttled")
    assert re.search(r"try again in \d+ s", guesser.locator("#login-error").inner_text())


def test_drain_a_collector_and_ready_it_again_as_haproxy_sees_it(cluster, browser):
    from lb import runtime

    page = sign_in(browser, cluster)
    page.wait_for_url(console_url(cluster))
    assert runtime.server_states(cluster.lb_socket)["c1"] == runtime.UP
    assert page.locator("#lb-c1").inner_text() == "UP"
    page.click("#drain-c1")
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == "collector c1: drained"
    assert runtime.server_states(cluster.lb_socket)["c1"] == runtime.DRAIN  # HAProxy's own word
    assert page.locator("#lb-c1").inner_text() == "DRAIN"
    # Drained: new requests go to the other collector only.
    import requests

    from tests.e2e.conftest import tls

    seen = {requests.get(f"{cluster.lb_url}/readyz", timeout=5, **tls(cluster)).status_code for _ in range(6)}
    assert seen == {200}
    shoot(page, "drained")
    page.click("#ready-c1")
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == "collector c1: ready"
    runtime.wait_for_state(cluster.lb_socket, "c1", runtime.UP, timeout=10)
    events = analyst_get(cluster, "/events?kind=collector-drain&limit=50")["events"]
    assert any(e["collector"] == "c1" and e["detail"]["by"] == "admin" for e in events)


def test_a_printer_out_of_service_refuses_a_release_and_comes_back(cluster, browser):
    from tests.e2e.conftest import login, release, submit, user

    printer = cluster.printers[1]["id"]
    bob = user(cluster, "bob")
    job_id = submit(cluster, "bob", b"%PDF-1.4\n% console test\n", title="console test").json()["id"]
    page = sign_in(browser, cluster)
    page.wait_for_url(console_url(cluster))
    page.fill(f"#printer-{printer} input[name=reason]", "toner being replaced")
    page.click(f"#out-of-service-{printer}")
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == f"printer {printer}: out of service"
    assert "toner being replaced" in page.locator(f"#printer-{printer}").inner_text()
    record = analyst_get(cluster, f"/printers/{printer}")["printer"]
    assert (record["in_service"], record["service_reason"]) == (False, "toner being replaced")
    try:
        session = login(cluster, printer, badge=bob["badge"]).json()["session"]
        result = release(cluster, session, {"jobs": [job_id]}).json()["results"][0]
        assert result["status"] == "printer-out-of-service"
        assert analyst_get(cluster, f"/jobs/{job_id}")["job"]["state"] == "held"
    finally:
        page.click(f"#in-service-{printer}")
        page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == f"printer {printer}: back in service"
    assert analyst_get(cluster, f"/printers/{printer}")["printer"]["in_service"] is True
    analyst_call(cluster, "DELETE", f"/jobs/{job_id}", json={"reason": "test done"})


def test_search_the_event_log_and_export_it_as_csv(cluster, browser):
    from tests.e2e.conftest import submit

    submitted = submit(cluster, "carol", b"%PDF-1.4\n% search test\n", title="=cmd|' /C calc'!A0").json()
    job_id, holders = submitted["id"], sorted(submitted["locations"])
    page = sign_in(browser, cluster)
    page.wait_for_url(console_url(cluster))
    page.click("#nav-events")
    page.fill("#user", "carol")
    page.fill("#job", job_id)
    page.click("#search-button")
    page.wait_for_url("**/console/events?*")
    assert page.locator("#found").inner_text() == "1 found."
    assert page.locator("#events tr[id^=event-]").count() == 1
    assert "submit" in page.locator("#events tr[id^=event-]").inner_text()
    with page.expect_download() as download_info:
        page.click("#export")
    download = download_info.value
    assert download.suggested_filename.startswith("pullprint-events-")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert [(r["kind"], r["user"], r["job"]) for r in rows] == [("submit", "carol", job_id)]
    # The jobs' export defuses a title a spreadsheet would run.
    page.click("#nav-jobs")
    page.fill("#job", job_id)
    page.click("#search-button")
    page.wait_for_url("**/console/jobs?*")
    with page.expect_download() as download_info:
        page.click("#export")
    (job_row,) = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert job_row["title"] == "'=cmd|' /C calc'!A0"
    # And the console deletes it, as its owner could at a station: both copies are shredded at once.
    assert all(list((cluster.collectors[h].spool_dir / "jobs").glob(f"{job_id}.*")) for h in holders)
    page.click(f"#delete-{job_id}")
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == f"job {job_id}: deleted; its copies shredded at {', '.join(holders)}"
    assert analyst_get(cluster, f"/jobs/{job_id}")["job"]["state"] == "deleted"
    for collector in cluster.collectors.values():
        assert not list((collector.spool_dir / "jobs").glob(f"{job_id}.*")), collector.id


def test_a_read_only_account_sees_the_fleet_and_is_refused_an_action(cluster, browser, reader):
    from lb import runtime

    page = sign_in(browser, cluster, reader, READER_PASSWORD)
    page.wait_for_url(console_url(cluster))
    assert "read-only" in page.locator("#operator").inner_text()
    assert page.locator("#collector-c1").count() == 1
    assert page.locator("button[id^=drain-], button[id^=out-of-service-], button[id^=in-service-]").count() == 0
    # The form a full account would post, sent by this session with its own token: refused.
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(f"{console_url(cluster)}/collectors/c1/drain", form={"csrf": token},
                               headers={"Origin": cluster.lb_url, "Accept": "application/json"})
    assert answer.status == 403 and answer.json()["error"] == "read-only"
    assert runtime.server_states(cluster.lb_socket)["c1"] == runtime.UP
    page.click("#nav-reports")
    page.wait_for_selector("#chart-day svg")
    assert page.locator("svg.chart").count() == 4
    page.click("#logout")
    page.wait_for_url("**/console/login")
    page.goto(console_url(cluster))
    page.wait_for_url("**/console/login")


def test_reports_chart_what_the_printers_really_printed(cluster, browser):
    from tests.browser.conftest import pdf
    from tests.e2e.conftest import login, received, release, submit, user

    printer = cluster.printers[0]
    data = pdf(3, "console report")
    answer = submit(cluster, "carol", data, title="report.pdf", headers={"X-Pullprint-Copies": "2"})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    before = len(received(printer))
    session = login(cluster, printer["id"], badge=user(cluster, "carol")["badge"]).json()["session"]
    assert release(cluster, session, {"jobs": [job_id]}).json()["results"][0]["status"] == "printed"
    wait_for(lambda: len(received(printer)) > before, 20, "the job at the printer")
    expected = {r["key"]: r["impressions"] for r in analyst_get(cluster, "/reports/pages?by=user")["rows"]}
    assert expected["carol"] >= 6  # 3 pages × 2 copies, and whatever carol printed before in this cluster
    page = sign_in(browser, cluster)
    page.wait_for_url(console_url(cluster))
    page.click("#nav-reports")
    page.wait_for_selector("#chart-user svg")
    chart = page.locator("#chart-user svg").inner_html()
    assert f"<title>carol: {expected['carol']}</title>" in chart  # the bar is the accounting's own figure
    by_printer = {r["key"]: r["impressions"] for r in analyst_get(cluster, "/reports/pages?by=printer")["rows"]}
    assert f"<title>{printer['id']}: {by_printer[printer['id']]}</title>" in page.locator(
        "#chart-printer svg").inner_html()
    day = page.locator("#chart-day svg").inner_html()
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    assert re.search(rf"<title>{today}: [1-9]\d*</title>", day)
    shoot(page, "reports")
