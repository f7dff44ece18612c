"""The operators' console: Basic auth with the configured scrypt hash, and what the page shows."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from analyst.app import create_app
from analyst.config import AnalystConfig
from analyst.web import EXTENSION
from pullprint.credentials import pin_hash
from pullprint.errors import PullprintError
from tests.analyst.conftest import Api, Clock, job_body, make_config

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = pin_hash(PASSWORD)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def console_app(db_url: str, clock: Clock) -> Iterator[Flask]:
    app = create_app(make_config(db_url, console_password_hash=PASSWORD_HASH))
    app.extensions[EXTENSION].clock = clock
    yield app
    app.extensions[EXTENSION].db.dispose()


def page(client: FlaskClient) -> str:
    answer = client.get("/console", headers=basic("admin", PASSWORD))
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert "script-src" not in answer.headers["Content-Security-Policy"]
    return answer.get_data(as_text=True)


def test_console_needs_the_password(console_app: Flask) -> None:
    client = console_app.test_client()
    for headers in ({}, basic("admin", "wrong"), basic("root", PASSWORD), {"Authorization": "Bearer x"},
                    {"Authorization": "Basic !!!"}):
        answer = client.get("/console", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"].startswith('Basic realm="pullprint console"')
        assert "pullprint console</h1>" not in answer.get_data(as_text=True)
    assert client.get("/console", headers=basic("admin", PASSWORD)).status_code == 200


def test_console_is_off_without_a_password_hash(app: Flask) -> None:
    answer = app.test_client().get("/console", headers=basic("admin", PASSWORD))
    assert answer.status_code == 404


def test_console_password_hash_from_a_file(tmp_path: Path) -> None:
    from pullprint.config import load

    (tmp_path / "console").write_text(PASSWORD_HASH + "\n")
    config = load(AnalystConfig, "analyst",
                  environ={"PULLPRINT_ANALYST_CONSOLE_PASSWORD_HASH_FILE": str(tmp_path / "console")})
    assert config.console_password_hash == PASSWORD_HASH
    with pytest.raises(PullprintError, match="console_password_hash"):
        create_app(make_config(f"sqlite:///{tmp_path}/a.db", console_password_hash="plain-text-password"))


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

    html = page(console_app.test_client())
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
    html = page(console_app.test_client())
    assert html.count('<tr id="event-') == 100
    assert "<h2>Last 100 events</h2>" in html
