"""The console's fleet actions, searches, CSV export and reports: each checked against what really changed
(HAProxy's server state on its runtime socket, the analyst's records), and a read-only account refused."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from analyst.accounting.service import count_print, record_print
from analyst.app import create_app
from analyst.web import EXTENSION
from lb import haproxy, runtime
from pullprint import daemons
from tests.analyst.conftest import Api, Clock, job_body, make_config
from tests.analyst.console_client import ConsoleBrowser
from tests.analyst.test_console import PASSWORD, PASSWORD_HASH, READER_PASSWORD, add_account
from tests.lb.conftest import start_backend


@pytest.fixture
def console_app(db_url: str, clock: Clock) -> Iterator[Flask]:
    app = create_app(make_config(db_url, console_password_hash=PASSWORD_HASH))
    app.extensions[EXTENSION].clock = clock
    add_account(app, "rita", "read-only", READER_PASSWORD)
    yield app
    app.extensions[EXTENSION].db.dispose()


def admin(app: Flask) -> ConsoleBrowser:
    return ConsoleBrowser(app).signed_in("admin", PASSWORD)


def reader(app: Flask) -> ConsoleBrowser:
    return ConsoleBrowser(app, "10.0.0.67").signed_in("rita", READER_PASSWORD)


@pytest.fixture
def load_balancer(tmp_path: Path) -> Iterator[str]:
    """A real HAProxy in front of two backends c1 and c2; its admin socket."""
    ports = {"c1": daemons.free_port(), "c2": daemons.free_port()}
    started = [start_backend(tmp_path, sid, port) for sid, port in ports.items()]
    folder = Path(tempfile.mkdtemp(prefix="pp-lb-"))
    socket_path = str(folder / "admin.sock")
    config = tmp_path / "haproxy.cfg"
    collectors = [{"id": sid, "url": f"http://127.0.0.1:{port}"} for sid, port in ports.items()]
    config.write_text(haproxy.render({"collectors": collectors}, haproxy.LbSettings(
        bind=f"127.0.0.1:{daemons.free_port()}", socket_path=socket_path)))
    started.append(haproxy.start(config, tmp_path / "haproxy.log"))
    try:
        daemons.wait_until(lambda: Path(socket_path).exists(), 5, "HAProxy's admin socket")
        for sid in ports:
            runtime.wait_for_state(socket_path, sid, runtime.UP, timeout=5)
        yield socket_path
    finally:
        for daemon in reversed(started):
            daemon.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_drain_and_ready_a_collector_through_haproxys_runtime_api(tmp_path: Path, clock: Clock,
                                                                  load_balancer: str) -> None:
    app = create_app(make_config(f"sqlite:///{tmp_path / 'a.db'}", console_password_hash=PASSWORD_HASH,
                                 lb_sockets=[load_balancer]))
    app.extensions[EXTENSION].clock = clock
    add_account(app, "rita", "read-only", READER_PASSWORD)
    try:
        api = Api(app.test_client())
        for sid in ("c1", "c2"):
            api.as_("collector", sid).post(f"/collectors/{sid}/heartbeat", json={"url": "https://h:1", "site": "main"})
        browser = admin(app)
        html = browser.get("/console").get_data(as_text=True)
        assert '<span class="badge UP" id="lb-c1">UP</span>' in html and 'id="drain-c1"' in html

        refused = reader(app).act("/console/collectors/c1/drain")
        assert refused.status_code == 403 and refused.json["error"] == "read-only"
        assert 'id="drain-c1"' not in reader(app).get("/console").get_data(as_text=True)
        assert runtime.server_states(load_balancer) == {"c1": "UP", "c2": "UP"}

        done = browser.act("/console/collectors/c1/drain")
        assert done.status_code == 303 and done.headers["Location"].startswith("/console?done=")
        assert runtime.server_states(load_balancer) == {"c1": "DRAIN", "c2": "UP"}
        page = browser.get(done.headers["Location"]).get_data(as_text=True)
        assert "collector c1: drained" in page and 'id="ready-c1"' in page
        assert browser.act("/console/collectors/c1/ready").status_code == 303
        runtime.wait_for_state(load_balancer, "c1", runtime.UP, timeout=5)
        events = api.get("/events?limit=100").json["events"]
        kinds = [(e["kind"], e["collector"], e["detail"].get("by")) for e in events]
        assert ("collector-drain", "c1", "admin") in kinds and ("collector-ready", "c1", "admin") in kinds

        assert browser.act("/console/collectors/c9/drain").status_code == 404
        assert browser.act("/console/collectors/c1/explode").status_code == 404
        assert browser.act("/console/collectors/c1;show/drain").status_code in (400, 404)
        assert runtime.server_states(load_balancer) == {"c1": "UP", "c2": "UP"}
    finally:
        app.extensions[EXTENSION].db.dispose()


def test_without_a_load_balancer_the_page_says_so_and_offers_no_drain(tmp_path: Path, clock: Clock) -> None:
    app = create_app(make_config(f"sqlite:///{tmp_path / 'a.db'}", console_password_hash=PASSWORD_HASH,
                                 lb_sockets=[str(tmp_path / "no.sock")]))
    try:
        Api(app.test_client()).as_("collector", "c1").post("/collectors/c1/heartbeat", json={"url": "https://h:1"})
        html = admin(app).get("/console").get_data(as_text=True)
        assert 'id="lb-problem"' in html and "cannot talk to HAProxy" in html and 'id="drain-c1"' not in html
    finally:
        app.extensions[EXTENSION].db.dispose()


def test_delete_a_held_job_from_the_console(console_app: Flask) -> None:
    api = Api(console_app.test_client())
    api.as_("collector", "c1").post("/collectors/c1/heartbeat", json={"url": f"https://127.0.0.1:{daemons.free_port()}"})
    api.post("/jobs", json=job_body("j1"))
    api.post("/jobs", json=job_body("j2"))
    page = admin(console_app).get("/console/jobs").get_data(as_text=True)
    assert 'id="delete-j1"' in page
    assert 'id="delete-j1"' not in reader(console_app).get("/console/jobs").get_data(as_text=True)
    assert reader(console_app).act("/console/jobs/j1/delete").status_code == 403
    assert api.get("/jobs/j1").json["job"]["state"] == "held"
    done = admin(console_app).act("/console/jobs/j1/delete", {"reason": "left at the printer",
                                                               "back": "/console/jobs?user=alice"})
    assert done.status_code == 303 and done.headers["Location"].startswith("/console/jobs?user=alice")
    job = api.get("/jobs/j1").json["job"]
    assert job["state"] == "deleted" and job["state_reason"] == "deleted in the console by admin: left at the printer"
    # Neither holder could be asked to shred its copy now (c1's address refuses, c2 has none on record):
    # the operator is told they will at their next reconcile.
    notice = parse_qs(urlsplit(done.headers["Location"]).query)["done"][0]
    assert notice == "job j1: deleted; not reached now, so shredded at their next reconcile: c1, c2"
    assert api.get("/jobs/j2").json["job"]["state"] == "held"
    # Deleting it again, or elsewhere: nothing more happens, and a foreign "back" is not followed.
    again = admin(console_app).act("/console/jobs/j1/delete", {"back": "//evil.example/"})
    assert again.status_code == 303 and again.headers["Location"].startswith("/console/jobs?")
    assert admin(console_app).act("/console/jobs/nope/delete").status_code == 404


def test_jobs_and_events_searched_paged_and_exported_as_safe_csv(console_app: Flask, clock: Clock) -> None:
    api = Api(console_app.test_client())
    for n in range(60):
        api.post("/jobs", json=job_body(f"a{n:02d}", owner="alice", title=f"a{n}", received_by="c1",
                                  locations=["c1", "c3"]))
    clock.advance(hours=2)
    api.post("/jobs", json=job_body("b1", owner="bob", title="=HYPERLINK(\"http://evil\")", received_by="c2",
                                  locations=["c2"]))
    api.post("/jobs", json=job_body("b2", owner="bob", title="@SUM(A1)", received_by="c2", locations=["c2"]))
    browser = reader(console_app)

    first = browser.get("/console/jobs?user=alice").get_data(as_text=True)
    assert "60 found, page 1 of 2." in first and first.count('<tr id="job-a') == 50 and 'id="next"' in first
    second = browser.get("/console/jobs?user=alice&page=2").get_data(as_text=True)
    assert second.count('<tr id="job-a') == 10 and 'id="previous"' in second
    bobs = browser.get("/console/jobs?collector=c2").get_data(as_text=True)
    assert "2 found." in bobs and 'id="job-b1"' in bobs and 'id="job-a00"' not in bobs
    later = browser.get("/console/jobs?since=2026-11-25T08:00").get_data(as_text=True)
    assert "2 found." in later
    assert "1 found." in browser.get("/console/jobs?job=b2").get_data(as_text=True)
    assert "0 found." in browser.get("/console/jobs?kind=printed").get_data(as_text=True)

    events = browser.get("/console/events?user=bob&kind=submit").get_data(as_text=True)
    assert "2 found." in events and events.count('<tr id="event-') == 2
    until = browser.get("/console/events?kind=submit&until=2026-11-25T08:00").get_data(as_text=True)
    assert "60 found, page 1 of 2." in until

    export = browser.get("/console/jobs.csv?user=bob")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.headers["Content-Disposition"].startswith('attachment; filename="pullprint-jobs-')
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert {r["title"] for r in rows} == {"'=HYPERLINK(\"http://evil\")", "'@SUM(A1)"}
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    events_csv = list(csv.DictReader(io.StringIO(browser.get("/console/events.csv?kind=submit").get_data(
        as_text=True))))
    assert len(events_csv) == 62 and events_csv[0]["job"] == "b2"  # all of them, newest first

    for query, field in (("since=yesterday", "since"), ("page=0", "page"), ("user=a%20b", "user"),
                         ("since=2026-11-26&until=2026-11-25", "until"), ("job=%00", "job")):
        answer = browser.get(f"/console/jobs?{query}")
        assert answer.status_code == 400 and answer.json["field"] == field, query
        assert browser.get(f"/console/events.csv?{query}").status_code == 400


def test_reports_draw_pages_per_day_user_printer_and_site(console_app: Flask, clock: Clock) -> None:
    state = console_app.extensions[EXTENSION]
    with state.db.session(write=True) as session:
        for n, (user, printer, site, pages, copies, days_ago) in enumerate((
                ("alice", "p1", "north", 3, 2, 0), ("alice", "p2", "south", 10, 1, 1),
                ("bob<b>", "p1", "north", 1, 1, 1), ("carol", "p9", "north", 5, 1, 40))):
            record_print(session, job_id=f"j{n}", user=user, printer=printer, collector="c1", site=site,
                         counts=count_print(pages, copies, {}), printed_at=clock() - timedelta(days=days_ago),
                         recorded_at=clock(), offline=False)
    page = reader(console_app).get("/console/reports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("<svg") == 4 and "<script" not in html
    day = html.split('id="chart-day"')[1].split("</section>")[0]
    assert "<title>2026-11-25: 6</title>" in day and "<title>2026-11-24: 11</title>" in day
    users = html.split('id="chart-user"')[1].split("</section>")[0]
    assert "<title>alice: 16</title>" in users and "bob&lt;b&gt;: 1" in users and "<b>" not in users
    assert "carol" not in users  # 40 days ago: outside the last 30
    assert "<title>north: 7</title>" in html.split('id="chart-site"')[1]
    wide = reader(console_app).get("/console/reports?from=2026-10-01&to=2026-11-25").get_data(as_text=True)
    assert "<title>carol: 5</title>" in wide
    for query, field in (("from=2026-13-01", "from"), ("to=x", "to"), ("from=2026-11-26&to=2026-11-25", "to"),
                         ("from=2020-01-01&to=2026-11-25", "from")):
        answer = reader(console_app).get(f"/console/reports?{query}")
        assert answer.status_code == 400 and answer.json["field"] == field, query


def test_users_and_printers_added_and_changed_from_the_console(console_app: Flask) -> None:
    api = Api(console_app.test_client())
    browser = admin(console_app)
    assert browser.act("/console/users", {"name": "dora", "email": "dora@example.org", "pin": "482910",
                                          "allowed": "allow"}).status_code == 303
    user = api.get("/users").json["users"]
    dora = next(u for u in user if u["name"] == "dora")
    assert dora["email"] == "dora@example.org" and dora["has_pin"] and dora["allowed"]
    assert api.post("/auth", json={"user": "dora", "pin": "482910", "printer": "p1"}).status_code in (200, 404)
    assert browser.act("/console/users", {"name": "dora", "allowed": "deny"}).status_code == 303
    dora = next(u for u in api.get("/users").json["users"] if u["name"] == "dora")
    assert not dora["allowed"] and dora["email"] == "dora@example.org"  # blank fields keep what is stored
    for form, field in (({"name": "bad name"}, "name"), ({"name": "dora", "pin": "12"}, "pin"),
                        ({"name": "dora", "email": "not-an-address"}, "email"),
                        ({"name": "dora", "allowed": "maybe"}, "allowed")):
        answer = browser.act("/console/users", form)
        assert answer.status_code == 400 and answer.json["field"] == field, form
    assert next(u for u in api.get("/users").json["users"] if u["name"] == "dora") == dora

    assert browser.act("/console/printers", {"id": "lab", "uri": "socket://10.0.0.9:9100", "location": "Lab 2",
                                             "tags": "a3, colour"}).status_code == 303
    lab = api.get("/printers/lab").json["printer"]
    assert (lab["uri"], lab["location"], lab["tags"]) == ("socket://10.0.0.9:9100", "Lab 2", ["a3", "colour"])
    assert browser.act("/console/printers", {"id": "lab", "location": "Lab 3"}).status_code == 303
    assert api.get("/printers/lab").json["printer"]["uri"] == "socket://10.0.0.9:9100"
    bad = browser.act("/console/printers", {"id": "lab", "uri": "javascript:alert(1)"})
    assert bad.status_code == 400 and bad.json["field"] == "uri"
    assert browser.act("/console/printers", {"id": "new"}).status_code == 400  # a new printer needs its uri
    assert api.get("/printers/new").status_code == 404
    assert api.get("/printers/lab").json["printer"]["location"] == "Lab 3"

    assert reader(console_app).act("/console/printers", {"id": "x", "uri": "socket://h:9100"}).status_code == 403
    assert reader(console_app).act("/console/users", {"name": "eve"}).status_code == 403
    html = reader(console_app).get("/console/manage").get_data(as_text=True)
    assert 'id="user-form"' not in html and 'id="printer-form"' not in html and 'id="user-dora"' in html
    page = browser.get("/console/manage", headers={"Accept": "text/html"})
    assert 'id="user-form"' in page.get_data(as_text=True)
    html_error = browser.act("/console/printers", {"id": "lab", "uri": "javascript:x"}, headers={"Accept": "text/html"})
    assert html_error.status_code == 400 and html_error.mimetype == "text/html"
    assert "Nothing was changed." in html_error.get_data(as_text=True)


def test_heartbeats_report_version_spool_and_journal_depth_to_the_fleet_page(console_app: Flask,
                                                                             clock: Clock) -> None:
    api = Api(console_app.test_client())
    c1 = api.as_("collector", "c1")
    beat = {"url": "https://10.0.0.11:8800", "site": "main", "version": "0.1.0", "spool_jobs": 7,
            "journal_entries": 2}
    answer = c1.post("/collectors/c1/heartbeat", json=beat)
    assert answer.status_code == 200
    (listed,) = answer.json["collectors"]
    assert (listed["version"], listed["spool_jobs"], listed["journal_entries"]) == ("0.1.0", 7, 2)
    clock.advance(seconds=1)
    # A heartbeat that says nothing of them keeps what the last one said; a later one updates them.
    c1.post("/collectors/c1/heartbeat", json={"url": "https://10.0.0.11:8800"})
    clock.advance(seconds=1)
    c1.post("/collectors/c1/heartbeat", json={**beat, "spool_jobs": 9, "journal_entries": 0})
    html = reader(console_app).get("/console").get_data(as_text=True)
    assert '<td id="spool-c1">9</td>' in html and '<td id="journal-c1">0</td>' in html
    assert '<td id="version-c1">0.1.0</td>' in html
    for bad in ({"spool_jobs": -1}, {"journal_entries": "many"}, {"version": "x" * 65}, {"spool_jobs": 2**40}):
        refused = c1.post("/collectors/c1/heartbeat", json={**beat, **bad})
        assert refused.status_code == 400, bad
    assert api.get("/collectors").json["collectors"][0]["spool_jobs"] == 9


def test_printer_supplies_with_levels_on_the_fleet_page(console_app: Flask, clock: Clock) -> None:
    api = Api(console_app.test_client())
    api.post("/printers", json={"id": "hall", "uri": "socket://10.0.0.1:9100"})
    supplies = [{"description": "Black Toner Cartridge", "percent": 5.0}, {"description": "Drum <Unit>",
                                                                           "percent": None}]
    assert api.put("/printers/hall/status", json={"state": "warning", "warnings": ["toner-low"], "collector": "c1",
                                                  "supplies": supplies}).status_code == 200
    clock.advance(seconds=5)
    # The next reading without supplies (they are read less often) keeps the last ones.
    assert api.put("/printers/hall/status", json={"state": "warning", "warnings": ["toner-low"],
                                                  "collector": "c1"}).status_code == 200
    assert api.get("/printers/hall").json["printer"]["status"]["supplies"] == supplies
    html = reader(console_app).get("/console").get_data(as_text=True)
    row = html.split('<tr id="printer-hall">')[1].split("</tr>")[0]
    assert 'Black Toner Cartridge:' in row and '<meter min="0" max="100" value="5.0">5 %</meter>' in row
    assert "Drum &lt;Unit&gt;:" in row and "level unknown" in row
    for bad in ([{"description": "x", "percent": 101}], "toner", [{"description": "x" * 129}], [{}] * 33):
        answer = api.put("/printers/hall/status", json={"state": "ok", "supplies": bad})
        assert answer.status_code == 400 and answer.json["field"] in ("supplies", "percent", "description"), bad
    assert api.get("/printers/hall").json["printer"]["status"]["state"] == "warning"
