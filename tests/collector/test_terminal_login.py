"""A collector's terminal logins against a stand-in analyst and a real Redis: the analyst's 401 counts as a
failure (the probe's bug: it reached terminal.login as a plain PullprintError), its 429/423 come back as
they are, sessions are bound to their terminal, and with Redis and the analyst away each process throttles."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collector.app import create_app
from collector.config import CollectorConfig
from collector.node import build_node
from collector.redis_client import _Optional
from pullprint.credentials import badge_hash, pin_hash, token_digest

PEPPER = "pepper"
KIOSK, OTHER = "kiosk-token-" + "k" * 30, "other-token-" + "o" * 30


class StandInAnalyst:
    """Answers POST /api/v1/auth with what `auth` says (status, body); counts the calls."""

    def __init__(self) -> None:
        self.auth: tuple[int, dict[str, Any]] = (401, {"error": "bad-credentials", "message": "no"})
        self.calls: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.printers = {"p1", "p2"}  # what GET /api/v1/printers/<id> finds
        analyst = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/api/v1/auth":
                    analyst.calls.append(body)
                    status, answer = analyst.auth
                else:
                    status, answer = 404, {"error": "not-found", "message": "no"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                analyst.gets.append(self.path)
                asked = self.path.removeprefix("/api/v1/printers/")
                status, answer = 200, {"printer": {"id": asked, "uri": "socket://127.0.0.1:9"}, "jobs": [], "total": 0}
                if self.path.startswith("/api/v1/printers/") and asked not in analyst.printers:
                    status, answer = 404, {"error": "unknown-printer", "message": f"no printer {asked}"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_directory(spool: Path) -> None:
    """The synced directory a collector keeps: one user, two terminals (digests only)."""
    spool.joinpath("directory.json").write_text(json.dumps({
        "users": [{"name": "alice", "badge_hash": badge_hash(PEPPER.encode(), "0451"), "pin_hash": pin_hash("472913")}],
        "printers": [{"id": "p1", "uri": "socket://127.0.0.1:9"}, {"id": "p2", "uri": "socket://127.0.0.1:9"}],
        "submitters": [],
        "terminals": [{"id": "t-kiosk", "printer": "p1", "token_hash": token_digest(KIOSK)},
                      {"id": "t-other", "printer": "p2", "token_hash": token_digest(OTHER)}]}))


@pytest.fixture
def analyst() -> Iterator[StandInAnalyst]:
    server = StandInAnalyst()
    yield server
    server.close()


def collector_app(tmp_path: Path, analyst_url: str, **settings: Any) -> Any:
    config = dataclasses.replace(CollectorConfig(), id="c1", spool_dir=str(tmp_path), installation_key="11" * 32,
                                 session_key="k", badge_pepper=PEPPER, insecure_plain_http=True,
                                 analyst_url=analyst_url, **settings)
    write_directory(tmp_path)
    node = build_node(config)
    return create_app(config, node=node), node


@pytest.fixture
def collector(tmp_path: Path, redis, redis_settings, analyst: StandInAnalyst):
    _Optional.skip_until = 0.0
    app, node = collector_app(tmp_path, analyst.url, **redis_settings)
    yield app.test_client()
    node.close()


def login(client: Any, token: str | None, **body: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/sessions", json=body, headers=headers)


def test_the_analysts_401_counts_and_the_collector_stops_asking(collector, analyst: StandInAnalyst) -> None:
    answers = [login(collector, KIOSK, badge=f"9{i}") for i in range(15)]
    assert [a.status_code for a in answers] == [401] * 10 + [429] * 5
    assert answers[-1].json["retry_after"] == 2 and answers[-1].headers["Retry-After"] == "2"
    assert len(analyst.calls) == 10  # throttled attempts never reach the analyst
    # The analyst was told where each attempt came from, and the printer comes from the terminal.
    assert {(c["terminal"], c["printer"], c["source"]) for c in analyst.calls} == {("t-kiosk", "p1", "127.0.0.1")}


def test_the_analysts_own_throttle_comes_back_as_it_is(collector, analyst: StandInAnalyst) -> None:
    analyst.auth = (423, {"error": "locked", "message": "too many failed attempts; locked for 120 s",
                          "retry_after": 120})
    answer = login(collector, KIOSK, badge="1")
    assert (answer.status_code, answer.json["retry_after"], answer.headers["Retry-After"]) == (423, 120, "120")
    analyst.auth = (429, {"error": "too-many-attempts", "message": "wait", "retry_after": 7})
    assert login(collector, KIOSK, user="alice", pin="000000").status_code == 429
    analyst.auth = (401, {"error": "bad-credentials", "message": "no"})
    # Not counted as failures here: ten more wrong badges still reach the analyst.
    assert [login(collector, KIOSK, badge=f"8{i}").status_code for i in range(10)] == [401] * 10


def test_a_session_is_bound_to_its_terminal_and_its_printer(collector, analyst: StandInAnalyst) -> None:
    analyst.auth = (200, {"user": "alice"})
    assert login(collector, KIOSK, printer="p2", badge="0451").json["error"] == "wrong-printer"
    answer = login(collector, KIOSK, badge="0451")
    assert (answer.status_code, answer.json["printer"]) == (201, "p1")
    token = answer.json["session"]
    assert collector.get(f"/api/v1/sessions/{token}", headers={"Authorization": f"Bearer {KIOSK}"}).status_code == 200
    for thief in ({"Authorization": f"Bearer {OTHER}"}, {}):
        stolen = collector.get(f"/api/v1/sessions/{token}", headers=thief)
        assert stolen.status_code in (401, 403)
        assert collector.post(f"/api/v1/sessions/{token}/release", json={"all": True}, headers=thief
                              ).status_code in (401, 403)
        assert collector.delete(f"/api/v1/sessions/{token}", headers=thief).status_code in (401, 403)
    assert collector.get(f"/api/v1/sessions/{token}",
                         headers={"Authorization": f"Bearer {OTHER}"}).json["error"] == "wrong-terminal"
    assert login(collector, None, printer="p1", badge="0451").json["error"] == "terminal-not-enrolled"


def test_a_login_asks_the_analyst_once_when_it_lists_the_jobs_in_its_answer(collector, analyst) -> None:
    held = {"id": "j-1", "owner": "alice", "title": "Quarterly report", "state": "held", "locations": ["c1"],
            "size": 10, "pages": 1, "submitted_at": "2026-12-03T10:00:00+00:00"}
    analyst.auth = (200, {"user": "alice", "jobs": [held], "total": 250})
    answer = login(collector, KIOSK, badge="0451")
    assert answer.status_code == 201, answer.json
    assert [j["id"] for j in answer.json["jobs"]] == ["j-1"] and answer.json["jobs_total"] == 250
    assert analyst.calls[-1]["jobs_limit"] == 100  # terminal_job_limit, asked for with the credential
    assert not [path for path in analyst.gets if "/jobs" in path]  # nothing asked again
    # An analyst that does not list at login (one not yet upgraded): the collector asks for the jobs itself.
    analyst.auth = (200, {"user": "alice"})
    answer = login(collector, KIOSK, badge="0451")
    assert answer.status_code == 201 and answer.json["jobs_total"] == 0
    assert [path for path in analyst.gets if "/jobs" in path] == ["/api/v1/users/alice/jobs?limit=100"]


def test_unenrolled_sessions_are_bound_to_the_address(tmp_path, redis, redis_settings, analyst) -> None:
    _Optional.skip_until = 0.0
    app, node = collector_app(tmp_path, analyst.url, allow_unenrolled_terminals=True, **redis_settings)
    try:
        analyst.auth = (200, {"user": "alice"})
        client = app.test_client()
        token = login(client, None, printer="p1", badge="0451").json["session"]
        assert client.get(f"/api/v1/sessions/{token}").status_code == 200
        moved = client.get(f"/api/v1/sessions/{token}", environ_base={"REMOTE_ADDR": "10.9.9.9"})
        assert moved.json["error"] == "wrong-terminal"
        assert client.get(f"/api/v1/sessions/{token}", headers={"Authorization": f"Bearer {KIOSK}"}
                          ).status_code == 403
    finally:
        node.close()


def test_a_login_at_a_printer_the_sync_brought_asks_the_analyst_only_who_it_is(collector, analyst) -> None:
    analyst.auth = (200, {"user": "alice", "jobs": [], "total": 0})
    for _ in range(3):
        assert login(collector, KIOSK, badge="0451").status_code == 201
    assert len(analyst.calls) == 3 and analyst.gets == []  # one call per login: no printer asked for


def test_a_printer_added_since_the_sync_is_asked_for_and_an_unknown_one_refused(
        tmp_path, redis, redis_settings, analyst) -> None:
    _Optional.skip_until = 0.0
    app, node = collector_app(tmp_path, analyst.url, allow_unenrolled_terminals=True, **redis_settings)
    try:
        analyst.auth = (200, {"user": "alice", "jobs": [], "total": 0})
        analyst.printers.add("p3")  # added at the analyst after the collector's last sync
        client = app.test_client()
        answer = login(client, None, printer="p3", badge="0451")
        assert (answer.status_code, answer.json["printer"]) == (201, "p3")
        assert analyst.gets == ["/api/v1/printers/p3"]
        refused = login(client, None, printer="p404", badge="0451")
        assert (refused.status_code, refused.json["error"]) == (404, "unknown-printer")
        assert "session" not in refused.json
    finally:
        node.close()


def test_with_redis_and_the_analyst_away_the_process_still_throttles(tmp_path) -> None:
    from pullprint.daemons import free_port

    _Optional.skip_until = 0.0
    app, node = collector_app(tmp_path, f"http://127.0.0.1:{free_port()}",
                              redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        client = app.test_client()
        statuses = [login(client, KIOSK, badge=f"7{i}").status_code for i in range(14)]
        assert statuses == [401] * 10 + [429] * 4
        # Offline, a known badge still logs in at another terminal (from the synced directory).
        offline = login(client, OTHER, badge="0451")
        assert offline.status_code == 201 and any("offline" in w for w in offline.json["warnings"])
        # And the user name is limited offline too, for unknown and known names alike.
        for name in ("alice", "nobody"):
            answers = [login(client, OTHER, user=name, pin="000000").status_code for _ in range(6)]
            assert answers == [401] * 5 + [429]
    finally:
        node.close()
        _Optional.skip_until = 0.0


def test_offline_misses_cost_the_same_work(tmp_path, monkeypatch) -> None:
    """Unknown badge, unknown user, a user without a PIN, wrong PIN: one scrypt each from the synced cache."""
    import pullprint.credentials as credentials
    from collector.directory import DirectoryCache
    from pullprint.errors import Unauthorized

    write_directory(tmp_path)
    cache = json.loads((tmp_path / "directory.json").read_text())
    cache["users"].append({"name": "bob", "badge_hash": None, "pin_hash": None})
    (tmp_path / "directory.json").write_text(json.dumps(cache))
    directory = DirectoryCache(None, tmp_path / "directory.json", PEPPER)  # type: ignore[arg-type]
    credentials.verify_pin("warm", None)  # the dummy hash is made once, up front
    calls: list[int] = []
    real = credentials.hashlib.scrypt
    monkeypatch.setattr(credentials.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    costs = []
    for attempt in ({"badge": "nope"}, {"user": "ghost", "pin": "000000"}, {"user": "bob", "pin": "000000"},
                    {"user": "alice", "pin": "000000"}):
        before = len(calls)
        with pytest.raises(Unauthorized) as refused:
            directory._authenticate_offline(attempt)
        assert refused.value.to_json() == {"error": "bad-credentials", "message": "badge or PIN not recognised"}
        costs.append(len(calls) - before)
    assert costs == [1, 1, 1, 1]


def test_a_slow_analyst_cannot_stretch_a_login_past_its_budget(tmp_path, redis, redis_settings) -> None:
    """Each call to the analyst answers just under its own timeout: one after the other they would take
    twice the budget. The login's one deadline makes it fall back (the listing from this node's own
    spool, said to be offline) and answer within the budget."""
    import time

    slow = StandInAnalyst()
    slow.auth = (200, {"user": "alice"})
    handler = slow.server.RequestHandlerClass
    for name in ("do_POST", "do_GET"):
        answer = getattr(handler, name)

        def delayed(self: Any, answer: Any = answer) -> None:
            time.sleep(0.6)
            answer(self)

        setattr(handler, name, delayed)
    _Optional.skip_until = 0.0
    app, node = collector_app(tmp_path, slow.url, analyst_timeout=0.9, login_budget_seconds=1.0, **redis_settings)
    try:
        client = app.test_client()
        started = time.monotonic()
        answer = login(client, KIOSK, badge="0451")
        took = time.monotonic() - started
        assert answer.status_code == 201, answer.json
        assert answer.json["user"] == "alice"  # the analyst's own answer to the credential (0.6 s)
        assert any("offline" in w for w in answer.json["warnings"])  # the listing fell back in time
        assert took < 1.0, f"the login took {took:.2f} s, over its 1 s budget"
    finally:
        node.close()
        slow.close()
