"""The console against guessing and forged requests (issue 9): failed Basic logins are throttled per source
address, for every analyst process alike (the count is in SQL), and its state-changing form needs a CSRF
token from the page and a same-origin request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from analyst.app import create_app
from analyst.web import EXTENSION
from tests.analyst.conftest import Api, Clock, make_config
from tests.analyst.test_console import PASSWORD, PASSWORD_HASH, basic


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analyst.db'}"


@pytest.fixture
def make_console(db_url: str, clock: Clock) -> Iterator[object]:
    apps: list[Flask] = []

    def make() -> Flask:
        app = create_app(make_config(db_url, console_password_hash=PASSWORD_HASH))
        app.extensions[EXTENSION].clock = clock
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions[EXTENSION].db.dispose()


def _client(app: Flask, address: str = "10.0.0.66") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_password_guessing_is_throttled_per_address_across_processes(make_console, clock: Clock) -> None:
    one, two = make_console(), make_console()  # two gunicorn workers (or analysts) on one database
    for client in (_client(one), _client(two), _client(one), _client(two), _client(one)):
        assert client.get("/console", headers=basic("admin", "guess")).status_code == 401
    # Past the free failures even the right password waits: the count is shared, so no worker resets it.
    throttled = _client(two).get("/console", headers=basic("admin", PASSWORD))
    assert throttled.status_code == 429
    assert throttled.json["error"] == "too-many-attempts" and throttled.json["retry_after"] >= 1
    assert throttled.headers["Retry-After"] == str(throttled.json["retry_after"])
    # Another address is not held up by this one.
    assert _client(one, "10.0.0.7").get("/console", headers=basic("admin", PASSWORD)).status_code == 200
    # Waiting it out works; each further failure doubles the wait.
    clock.advance(seconds=throttled.json["retry_after"])
    assert _client(one).get("/console", headers=basic("admin", "guess")).status_code == 401
    again = _client(one).get("/console", headers=basic("admin", PASSWORD))
    assert again.status_code == 429 and again.json["retry_after"] > throttled.json["retry_after"]
    clock.advance(seconds=again.json["retry_after"])
    assert _client(two).get("/console", headers=basic("admin", PASSWORD)).status_code == 200


def test_a_request_without_credentials_is_a_challenge_not_a_failure(make_console) -> None:
    app = make_console()
    for _ in range(20):
        assert _client(app).get("/console").status_code == 401
    assert _client(app).get("/console", headers=basic("admin", PASSWORD)).status_code == 200


def _page_token(app: Flask) -> str:
    html = _client(app).get("/console", headers=basic("admin", PASSWORD)).get_data(as_text=True)
    tokens = set(re.findall(r'name="csrf" value="([^"]+)"', html))
    assert len(tokens) == 1, "every form of the page carries the token"
    return tokens.pop()


def _take_out(app: Flask, form: dict[str, str], headers: dict[str, str] | None = None):
    return _client(app).post("/console/printers/p1/service", data={"in_service": "false", "reason": "jam", **form},
                             headers={**basic("admin", PASSWORD), **(headers or {})})


def test_the_console_form_changes_a_printer_only_with_the_pages_token(make_console, clock: Clock) -> None:
    app = make_console()
    assert Api(app.test_client()).post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100"}).status_code \
        == 201
    token = _page_token(app)
    in_service = lambda: Api(app.test_client()).get("/printers/p1").json["printer"]["in_service"]  # noqa: E731
    for form, headers in (({}, {}), ({"csrf": "1.deadbeef"}, {}), ({"csrf": token + "0"}, {}),
                          ({"csrf": token}, {"Origin": "https://evil.example"}),
                          ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
                          ({"csrf": token}, {"Origin": "null"})):
        answer = _take_out(app, form, headers)
        assert answer.status_code == 403 and answer.json["error"] == "csrf-failed", (form, headers)
    assert in_service() is True
    assert _client(app).post("/console/printers/p1/service", data={"csrf": token, "in_service": "false"}) \
        .status_code == 401  # the form needs the password too
    done = _take_out(app, {"csrf": token}, {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/console")
    assert in_service() is False
    # A token outlives a working day at most; another worker (another app) accepts it as well.
    other = make_console()
    clock.advance(hours=13)
    assert _take_out(other, {"csrf": token}).status_code == 403
    assert _take_out(other, {"csrf": _page_token(other)}).status_code == 303


def test_the_page_forbids_framing_and_foreign_form_targets(make_console) -> None:
    answer = _client(make_console()).get("/console", headers=basic("admin", PASSWORD))
    policy = answer.headers["Content-Security-Policy"]
    assert "form-action 'self'" in policy and "frame-ancestors 'none'" in policy
