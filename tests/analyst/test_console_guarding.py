"""The console against guessing and forged requests: failed sign-ins are throttled per source address, for
every analyst process alike (the count is in SQL); every form needs the CSRF token of its own session's page
and a same-origin request; the pages forbid framing, scripts and foreign resources."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from analyst.app import create_app
from analyst.web import EXTENSION
from tests.analyst.conftest import Api, Clock, make_config
from tests.analyst.console_client import ConsoleBrowser, form_tokens
from tests.analyst.test_console import PASSWORD, PASSWORD_HASH


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analyst.db'}"


@pytest.fixture
def make_console(db_url: str, clock: Clock) -> Iterator[Callable[[], Flask]]:
    apps: list[Flask] = []

    def make() -> Flask:
        app = create_app(make_config(db_url, console_password_hash=PASSWORD_HASH))
        app.extensions[EXTENSION].clock = clock
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions[EXTENSION].db.dispose()


def test_password_guessing_is_throttled_per_address_across_processes(make_console, clock: Clock) -> None:
    one, two = make_console(), make_console()  # two gunicorn workers (or analysts) on one database
    for app in (one, two, one, two, one):
        assert ConsoleBrowser(app).login("admin", "guess").status_code == 401
    # Past the free failures even the right password waits: the count is shared, so no worker resets it.
    throttled = ConsoleBrowser(two).login("admin", PASSWORD)
    assert throttled.status_code == 429 and "Set-Cookie" not in throttled.headers
    retry = int(throttled.headers["Retry-After"])
    assert retry >= 1 and f"try again in {retry} s" in throttled.get_data(as_text=True)
    # Another address is not held up by this one.
    assert ConsoleBrowser(one, "10.0.0.7").login("admin", PASSWORD).status_code == 303
    # Waiting it out works; each further failure doubles the wait.
    clock.advance(seconds=retry)
    assert ConsoleBrowser(one).login("admin", "guess").status_code == 401
    again = ConsoleBrowser(one).login("admin", PASSWORD)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > retry
    clock.advance(seconds=int(again.headers["Retry-After"]))
    assert ConsoleBrowser(two).login("admin", PASSWORD).status_code == 303


def test_behind_the_load_balancer_the_forwarded_address_is_throttled(make_console) -> None:
    from tests.identities import as_node

    app = make_console()
    lb = as_node("lb", "lb")

    def via_lb(client_address: str) -> ConsoleBrowser:
        browser = ConsoleBrowser(app, "127.0.0.1")
        browser.client.environ_base.update(lb)
        browser.client.environ_base["HTTP_X_FORWARDED_FOR"] = client_address
        return browser

    for _ in range(6):
        via_lb("192.0.2.9").login("admin", "guess")
    assert via_lb("192.0.2.9").login("admin", PASSWORD).status_code == 429
    assert via_lb("192.0.2.10").login("admin", PASSWORD).status_code == 303  # another operator's address


def test_the_sign_in_form_needs_its_own_token_and_the_same_origin(make_console) -> None:
    app = make_console()
    browser = ConsoleBrowser(app)
    (token,) = form_tokens(browser.get("/console/login").get_data(as_text=True))
    for form, headers in (({}, {}), ({"csrf": "1.deadbeef"}, {}), ({"csrf": token}, {"Origin": "https://evil.example"}),
                          ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"})):
        answer = browser.post("/console/login", {"name": "admin", "password": PASSWORD, **form}, headers=headers)
        assert answer.status_code == 403 and "Set-Cookie" not in answer.headers, (form, headers)


def test_a_console_form_changes_a_printer_only_with_its_sessions_token(make_console, clock: Clock) -> None:
    app = make_console()
    assert Api(app.test_client()).post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100"}).status_code \
        == 201
    browser = ConsoleBrowser(app).signed_in("admin", PASSWORD)
    token = browser.token()
    other_token = ConsoleBrowser(app).signed_in("admin", PASSWORD).token()  # another session's
    in_service = lambda: Api(app.test_client()).get("/printers/p1").json["printer"]["in_service"]  # noqa: E731

    def take_out(form: dict[str, str], headers: dict[str, str] | None = None, who: ConsoleBrowser = browser):
        return who.post("/console/printers/p1/service", {"in_service": "false", "reason": "jam", **form},
                        headers=headers or {})

    for form, headers in (({}, {}), ({"csrf": "1.deadbeef"}, {}), ({"csrf": token + "0"}, {}),
                          ({"csrf": other_token}, {}),
                          ({"csrf": token}, {"Origin": "https://evil.example"}),
                          ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
                          ({"csrf": token}, {"Origin": "null"})):
        answer = take_out(form, headers)
        assert answer.status_code == 403 and answer.json["error"] == "csrf-failed", (form, headers)
    assert in_service() is True
    assert take_out({"csrf": token}, who=ConsoleBrowser(app)).status_code == 401  # and a session
    bad = take_out({"csrf": token, "in_service": "maybe"})
    assert bad.status_code == 400 and bad.json["field"] == "in_service"
    assert in_service() is True
    done = take_out({"csrf": token}, {"Origin": "https://analyst.test", "Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 303 and done.headers["Location"].startswith("/console?done=")
    assert in_service() is False
    # Another worker (another app) accepts the token of this session.
    other = make_console()
    assert ConsoleBrowser(other).client is not None
    other_browser = ConsoleBrowser(other)
    other_browser.client.set_cookie("__Host-pullprint-console",
                                    browser.client.get_cookie("__Host-pullprint-console",
                                                              domain="analyst.test").value, domain="analyst.test")
    assert other_browser.post("/console/printers/p1/service", {"csrf": token, "in_service": "true"}).status_code == 303
    assert in_service() is True


def test_the_pages_forbid_scripts_framing_and_foreign_resources(make_console) -> None:
    app = make_console()
    browser = ConsoleBrowser(app)
    for answer in (browser.get("/console/login"), browser.signed_in("admin", PASSWORD).get("/console")):
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "form-action 'self'" in policy and "frame-ancestors 'none'" in policy
        html = answer.get_data(as_text=True)
        assert "<script" not in html and " style=" not in html and "<style" not in html
        assert not re.search(r'(src|href)="(https?:)?//', html)
    css = browser.get("/console/static/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
