"""The operators' console: its own accounts (and the built-in admin of console_password_hash), a sign-in
form, sessions that expire, roles, and what the fleet page shows."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from analyst.app import create_app
from analyst.cli import console_user_main
from analyst.config import AnalystConfig
from analyst.console import service
from analyst.web import EXTENSION
from pullprint.credentials import pin_hash
from pullprint.errors import PullprintError
from tests.analyst.conftest import PG_PASSWORD, Api, Clock, job_body, make_config
from tests.analyst.console_client import ConsoleBrowser

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = pin_hash(PASSWORD)
READER_PASSWORD = "reader's long password"


@pytest.fixture
def console_app(db_url: str, clock: Clock) -> Iterator[Flask]:
    app = create_app(make_config(db_url, console_password_hash=PASSWORD_HASH))
    app.extensions[EXTENSION].clock = clock
    yield app
    app.extensions[EXTENSION].db.dispose()


def add_account(app: Flask, name: str, role: str, password: str) -> None:
    with app.extensions[EXTENSION].db.session(write=True) as session:
        service.upsert_account(session, name, role=role, password=password, now=app.extensions[EXTENSION].clock())


def page(app: Flask) -> str:
    answer = ConsoleBrowser(app).signed_in("admin", PASSWORD).get("/console")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert "script-src" not in answer.headers["Content-Security-Policy"]
    return answer.get_data(as_text=True)


def test_the_console_needs_a_sign_in_with_the_right_password(console_app: Flask) -> None:
    browser = ConsoleBrowser(console_app)
    first = browser.get("/console")
    assert first.status_code == 303 and first.headers["Location"] == "/console/login"
    for name, password in (("admin", "wrong"), ("root", PASSWORD), ("", ""), ("admin", PASSWORD + " ")):
        answer = browser.login(name, password)
        assert answer.status_code == 401, (name, password)
        assert "Wrong name or password." in answer.get_data(as_text=True)
        assert "Set-Cookie" not in answer.headers
        assert browser.get("/console").status_code == 303
    done = browser.login("admin", PASSWORD)
    assert done.status_code == 303 and done.headers["Location"] == "/console"
    cookie = done.headers["Set-Cookie"]
    assert cookie.startswith("__Host-pullprint-console=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    assert PASSWORD not in cookie
    html = browser.get("/console").get_data(as_text=True)
    assert "pullprint console</h1>" in html and '<span id="operator">admin' in html


def test_a_tampered_or_foreign_cookie_is_no_session(console_app: Flask) -> None:
    browser = ConsoleBrowser(console_app).signed_in("admin", PASSWORD)
    value = browser.client.get_cookie("__Host-pullprint-console", domain="analyst.test").value
    token, _, mac = value.partition(".")
    for forged in (token, f"{token}.{'0' * len(mac)}", f"x{token[1:]}.{mac}", "", "." * 300):
        other = ConsoleBrowser(console_app)
        other.client.set_cookie("__Host-pullprint-console", forged, domain="analyst.test")
        assert other.get("/console").status_code == 303, forged
    assert browser.get("/console").status_code == 200


def test_the_console_is_off_without_any_account(app: Flask) -> None:
    browser = ConsoleBrowser(app)
    assert browser.get("/console").status_code == 404
    assert browser.get("/console/login").status_code == 404
    # An account of its own turns it on, without console_password_hash.
    add_account(app, "olga", "full", "olga's long password")
    assert ConsoleBrowser(app).signed_in("olga", "olga's long password").get("/console").status_code == 200
    assert ConsoleBrowser(app).login("admin", PASSWORD).status_code == 401  # no built-in admin without the hash


def test_console_password_hash_from_a_file(tmp_path: Path) -> None:
    from pullprint.config import load

    (tmp_path / "console").write_text(PASSWORD_HASH + "\n")
    config = load(AnalystConfig, "analyst",
                  environ={"PULLPRINT_ANALYST_CONSOLE_PASSWORD_HASH_FILE": str(tmp_path / "console")})
    assert config.console_password_hash == PASSWORD_HASH
    with pytest.raises(PullprintError, match="console_password_hash"):
        create_app(make_config(f"sqlite:///{tmp_path}/a.db", console_password_hash="plain-text-password"))


def test_sessions_end_when_idle_at_their_age_at_logout_and_with_a_new_password(console_app: Flask,
                                                                             clock: Clock) -> None:
    browser = ConsoleBrowser(console_app).signed_in("admin", PASSWORD)
    clock.advance(minutes=29)
    assert browser.get("/console").status_code == 200  # each request restarts the idle clock
    clock.advance(minutes=29)
    assert browser.get("/console").status_code == 200
    clock.advance(minutes=31)
    assert browser.get("/console").status_code == 303  # 31 minutes unused: over

    browser = ConsoleBrowser(console_app).signed_in("admin", PASSWORD)
    for _ in range(12 * 4 + 1):
        clock.advance(minutes=15)
        if browser.get("/console").status_code != 200:
            break
    else:
        pytest.fail("a session in use lasted past its 12 hours")
    assert browser.get("/console").status_code == 303

    browser = ConsoleBrowser(console_app).signed_in("admin", PASSWORD)
    cookie = browser.client.get_cookie("__Host-pullprint-console", domain="analyst.test").value
    out = browser.act("/console/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/console/login"
    assert "__Host-pullprint-console=;" in out.headers["Set-Cookie"]
    replay = ConsoleBrowser(console_app)
    replay.client.set_cookie("__Host-pullprint-console", cookie, domain="analyst.test")
    assert replay.get("/console").status_code == 303  # the old cookie is worth nothing after logout

    add_account(console_app, "olga", "full", "olga's long password")
    olga = ConsoleBrowser(console_app).signed_in("olga", "olga's long password")
    add_account(console_app, "olga", "full", "olga's new password")
    assert olga.get("/console").status_code == 303
    with console_app.extensions[EXTENSION].db.session(write=True) as session:
        service.remove_account(session, "olga")
    assert ConsoleBrowser(console_app).login("olga", "olga's new password").status_code == 401


def test_a_read_only_account_sees_everything_and_changes_nothing(console_app: Flask) -> None:
    api = Api(console_app.test_client())
    api.post("/printers", json={"id": "hall", "uri": "socket://10.0.0.1:9100"})
    add_account(console_app, "rita", "read-only", READER_PASSWORD)
    rita = ConsoleBrowser(console_app).signed_in("rita", READER_PASSWORD)
    html = rita.get("/console").get_data(as_text=True)
    assert '<tr id="printer-hall">' in html and "read-only</span>" in html
    assert "Take out of service" not in html and "/service" not in html
    refused = rita.act("/console/printers/hall/service", {"in_service": "false", "reason": "no"})
    assert refused.status_code == 403 and refused.json["error"] == "read-only"
    assert api.get("/printers/hall").json["printer"]["in_service"] is True
    # The same form from a full account works.
    admin = ConsoleBrowser(console_app).signed_in("admin", PASSWORD)
    assert "Take out of service" in admin.get("/console").get_data(as_text=True)
    assert admin.act("/console/printers/hall/service", {"in_service": "false", "reason": "jam"}).status_code == 303
    assert api.get("/printers/hall").json["printer"]["in_service"] is False
    assert rita.act("/console/logout").status_code == 303  # a reader may still sign out


def test_console_user_cli_takes_the_password_from_stdin_only(db_url: str, tmp_path: Path, clock: Clock,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pepper").write_text("pepper")
    (tmp_path / "dbpw").write_text(PG_PASSWORD)
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.setenv("PULLPRINT_ANALYST_DB_PASSWORD_FILE", str(tmp_path / "dbpw"))
    monkeypatch.delenv("PULLPRINT_CONFIG", raising=False)

    def run(*argv: str, stdin: str = "") -> str:
        out = io.StringIO()
        assert console_user_main([*argv, "--db-url", db_url], stdin=io.StringIO(stdin), out=out) == 0
        return out.getvalue()

    assert run("add", "olga", "--role", "full", "--password-stdin", stdin="olga's long password\n") \
        == "added console account olga (full)\n"
    assert run("add", "rita", "--password-stdin", stdin="rita's long password\n") \
        == "added console account rita (read-only)\n"
    with pytest.raises(SystemExit):  # no option takes the password itself
        console_user_main(["add", "eve", "--password", "x", "--db-url", db_url])
    with pytest.raises(PullprintError, match="12 to 1024"):
        console_user_main(["add", "eve", "--password-stdin", "--db-url", db_url], stdin=io.StringIO("short\n"))
    with pytest.raises(PullprintError, match="needs a password"):
        console_user_main(["add", "eve", "--role", "full", "--db-url", db_url])
    assert run("list") == "olga\tfull\nrita\tread-only\n"
    app = create_app(make_config(db_url))
    app.extensions[EXTENSION].clock = clock
    try:
        with app.extensions[EXTENSION].db.session() as session:
            stored = service.list_accounts(session)[0].password_hash
        assert stored.startswith("scrypt$") and "olga's" not in stored
        assert ConsoleBrowser(app).signed_in("olga", "olga's long password").get("/console").status_code == 200
        assert run("add", "olga", "--role", "read-only") == "updated console account olga (read-only)\n"
        assert "read-only</span>" in ConsoleBrowser(app).signed_in("olga", "olga's long password").get(
            "/console").get_data(as_text=True)
        assert run("remove", "rita") == "removed console account rita\n"
        assert ConsoleBrowser(app).login("rita", "rita's long password").status_code == 401
    finally:
        app.extensions[EXTENSION].db.dispose()


def test_console_shows_collectors_printers_jobs_and_events(console_app: Flask, clock: Clock) -> None:
    api = Api(console_app.test_client())
    api.as_("collector", "c1").post("/collectors/c1/heartbeat", json={"url": "http://10.0.0.11:8800", "site": "north"})
    api.as_("collector", "c2").post("/collectors/c2/heartbeat", json={"url": "http://10.0.0.12:8800", "site": "north"})
    clock.advance(seconds=10)
    api.as_("collector", "c2").post("/collectors/c2/heartbeat", json={"url": "http://10.0.0.12:8800", "site": "north"})
    api.post("/printers", json={"id": "hall", "uri": "socket://10.0.0.1:9100", "location": "Main hall",
                                "building": "Alpha", "floor": "0", "room": "Hall",
                                "snmp_v3_user": "monitor", "snmp_v3_auth_key": "console-must-not-show"})
    api.post("/printers", json={"id": "lab", "uri": "socket://10.0.0.2:9100"})
    api.put("/printers/hall/status", json={"state": "error", "reason": "media-jam", "errors": ["media-jam"],
                                           "warnings": ["toner-low"], "collector": "c1"})
    api.put("/printers/lab/service", json={"in_service": False, "reason": "drum <replacement>"})
    api.post("/jobs", json=job_body("j1"))
    api.post("/jobs", json=job_body("j2", offline=True, at="2026-11-25T06:55:00Z"))

    html = page(console_app)
    assert '<tr id="collector-c1">' in html and '<tr id="collector-c2">' in html
    c1 = html.split('<tr id="collector-c1">')[1].split("</tr>")[0]
    c2 = html.split('<tr id="collector-c2">')[1].split("</tr>")[0]
    assert "dead" in c1 and "alive" in c2
    hall = html.split('<tr id="printer-hall">')[1].split("</tr>")[0]
    assert "Main hall" in hall and "Alpha, floor 0, room Hall" in hall
    assert 'class="badge error">error' in hall and "media-jam" in hall and "toner-low" in hall
    lab = html.split('<tr id="printer-lab">')[1].split("</tr>")[0]
    assert "out of service" in lab
    assert "drum &lt;replacement&gt;" in lab  # escaped, never markup
    assert "no report" in lab
    assert '<li id="jobs-held">held: <strong>2</strong></li>' in html
    assert "console-must-not-show" not in html

    events = html.split("events</h2>")[1]
    rows = events.split('<tr id="event-')[1:]
    assert rows, "no events shown"
    offline_rows = [r for r in rows if 'class="offline-event"' in r]
    assert len(offline_rows) == 1
    assert "submit" in offline_rows[0]
    assert '<span class="badge offline"' in offline_rows[0]
    assert "2026-11-25T06:55:00+00:00" in offline_rows[0]                 # when it happened
    assert "replayed 2026-11-25T07:00:10+00:00" in offline_rows[0]        # when the analyst heard of it
    assert "printer-status" in events and "printer-service" in events
    # Newest first.
    numbers = [int(r.split('"')[0]) for r in rows]
    assert numbers == sorted(numbers, reverse=True)


def test_console_shows_at_most_the_last_100_events(console_app: Flask) -> None:
    api = Api(console_app.test_client())
    for n in range(105):
        api.post("/jobs", json=job_body(f"j{n}"))
    html = page(console_app)
    assert html.count('<tr id="event-') == 100
    assert "<h2>Last 100 events</h2>" in html
