"""The HTTP surface: authentication, JSON errors, health, metrics, printers, collectors, sync and events."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from analyst.app import create_app
from tests.analyst.conftest import PRINTER_ADDITIONS, Api, Clock, job_body, make_config

API_CALLS = [
    ("get", "/jobs"), ("post", "/jobs"), ("get", "/jobs/j1"), ("post", "/jobs/j1/claim"),
    ("post", "/jobs/j1/finish"), ("post", "/jobs/j1/renew"), ("delete", "/jobs/j1"), ("put", "/jobs/j1/locations/c1"),
    ("delete", "/jobs/j1/locations/c1"), ("get", "/users/alice/jobs"), ("post", "/auth"),
    ("post", "/collectors/c1/heartbeat"), ("get", "/collectors"), ("get", "/printers"), ("get", "/printers/p1"),
    ("post", "/printers"), ("post", "/users"), ("delete", "/users/alice"), ("get", "/sync"), ("get", "/events"),
    ("post", "/maintenance/expire"), ("get", "/reports/pages?by=user"), ("put", "/printers/p1/status"),
    ("put", "/printers/p1/service"), ("delete", "/printers/p1"), ("get", "/users"),
]


def test_every_api_call_needs_a_cluster_certificate(app: Flask) -> None:
    client = app.test_client()
    for method, path in API_CALLS:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = getattr(client, method)(f"/api/v1{path}", json={}, headers=headers)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.json["error"] == "unauthenticated"


# What a collector's certificate may do at the analyst: its own work, never administration.
ADMINISTRATION = [("post", "/users"), ("get", "/users"), ("delete", "/users/alice"), ("post", "/printers"),
                  ("delete", "/printers/p1"), ("put", "/printers/p1/service"), ("get", "/events"),
                  ("get", "/reports/pages?by=user"), ("get", "/printers")]


def test_a_collector_certificate_cannot_administer(app: Flask) -> None:
    collector = Api(app.test_client(), "collector", "c1")
    for method, path in ADMINISTRATION:
        answer = getattr(collector, method)(path, json={"name": "mallory", "badge": "1"})
        assert answer.status_code == 403, (method, path)
        assert answer.json["error"] == "forbidden"
    # …and a badge set through the attempt above did not land.
    assert "mallory" not in [u["name"] for u in Api(app.test_client()).get("/users").json["users"]]
    for role in ("print-server", "lb"):
        assert Api(app.test_client(), role, "x").get("/sync").status_code == 403
    assert collector.get("/sync").status_code == 200


@pytest.mark.parametrize("path", ["/jobs", "/jobs/j1/claim", "/jobs/j1/finish", "/jobs/j1/renew", "/auth", "/users",
                                  "/printers"])
def test_malformed_json_is_a_400(api: Api, path: str) -> None:
    for data in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b""):
        answer = api.post(path, data=data, content_type="application/json")
        assert answer.status_code == 400, (path, data)
        assert answer.json["error"] == "malformed-json"
        assert answer.json["message"]


def test_wrong_types_are_400_not_500(api: Api) -> None:
    api.post("/jobs", json=job_body())
    bad = [
        ("/jobs", job_body("x", copies="two")), ("/jobs", job_body("x", copies=True)),
        ("/jobs", job_body("x", size=-1)), ("/jobs", job_body("x", options=["a"])),
        ("/jobs", job_body("x", locations="c1")), ("/jobs", {**job_body("x"), "owner": {"a": 1}}),
        ("/jobs", job_body("x", expires_at="tomorrow")), ("/jobs", job_body("x", owner="../etc")),
        ("/jobs", job_body("bad id")), ("/jobs", {"title": "no owner"}),
        ("/jobs/job1/claim", {"user": "alice", "collector": "c1", "printer": "p1", "lease_seconds": "60"}),
        ("/jobs/job1/claim", {"user": "alice", "collector": "c1", "printer": "p1", "lease_seconds": -1}),
        ("/jobs/job1/claim", {"user": "alice", "collector": 7, "printer": "p1"}),
        ("/jobs/job1/claim", {"user": "alice", "printer": "p1"}),
        ("/printers", {"id": "p1", "uri": "not a uri"}),
        ("/printers", {"id": "p1", "uri": "socket://h:9100", "snmp_port": 70000}),
        ("/printers", {"id": "p1", "uri": "socket://h:9100", "snmp_version": "4"}),
        ("/printers", {"id": "p1", "uri": "socket://h:9100", "tags": "color"}),
        ("/printers", {"id": "p1", "uri": "socket://h:9100", "unreachable_policy": "maybe"}),
        ("/printers", {"uri": "socket://h:9100"}),
    ]
    for path, body in bad:
        answer = api.post(path, json=body)
        assert answer.status_code == 400, (path, body, answer.json)
        assert answer.json["error"] in ("bad-field", "missing-field"), answer.json
    assert api.as_("collector", "c1").post("/collectors/c1/heartbeat", json={"url": 5}).status_code == 400
    assert api.get("/events?limit=lots").status_code == 400
    assert api.get("/jobs?limit=0").status_code == 400


def test_oversized_body_and_unknown_routes_answer_json(api: Api) -> None:
    big = api.post("/jobs", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", content_type="application/json")
    assert big.status_code == 413
    assert big.json["error"] == "request-entity-too-large"
    missing = api.get("/nothing-here")
    assert (missing.status_code, missing.json["error"]) == (404, "not-found")
    wrong_method = api.patch("/jobs")
    assert (wrong_method.status_code, wrong_method.json["error"]) == (405, "method-not-allowed")


def test_unexpected_errors_are_json_500(app: Flask, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from analyst.jobs import service

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "user_jobs", broken)
    answer = api.get("/users/alice/jobs")
    assert answer.status_code == 500
    assert answer.json == {"error": "internal-error", "message": "the analyst failed to handle this request"}


def test_health_and_readiness(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json) == (200, {"status": "ready"})


def test_not_ready_without_a_database(tmp_path: Path) -> None:
    config = make_config(f"sqlite:///{tmp_path}/missing/dir/analyst.db", auto_migrate=False)
    client = create_app(config).test_client()
    assert client.get("/healthz").status_code == 200
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert (answer.json or {})["error"] == "database-unavailable"


def test_not_ready_before_migrations(tmp_path: Path) -> None:
    client = create_app(make_config(f"sqlite:///{tmp_path}/analyst.db", auto_migrate=False)).test_client()
    answer = client.get("/readyz")
    assert (answer.status_code, (answer.json or {})["error"]) == (503, "schema-outdated")


def test_app_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    from pullprint.errors import PullprintError

    with pytest.raises(PullprintError, match="badge_pepper"):
        create_app(make_config(f"sqlite:///{tmp_path}/a.db", badge_pepper=""))


def test_a_secret_from_a_file(tmp_path: Path) -> None:
    from analyst.config import AnalystConfig
    from pullprint.config import load

    (tmp_path / "pepper").write_text("from-file\n")
    config = load(AnalystConfig, "analyst", environ={"PULLPRINT_ANALYST_BADGE_PEPPER_FILE": str(tmp_path / "pepper"),
                                                     "PULLPRINT_ANALYST_WORKERS": "3"})
    assert (config.badge_pepper, config.workers, config.bind) == ("from-file", 3, "127.0.0.1:8700")
    assert (config.job_lifetime_hours, config.collector_dead_after, config.default_lease_seconds) == (8, 5.0, 120)


def _sample(text: str, line_start: str) -> float:
    """The value of the sample whose line starts with `line_start` (name and labels), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics(app: Flask, api: Api) -> None:
    # Request counts live in the process (prometheus_client), so other tests' apps add to them: deltas.
    before = app.test_client().get("/metrics").get_data(as_text=True)
    api.post("/jobs", json=job_body("a"))
    api.post("/jobs", json=job_body("b"))
    api.post("/jobs/b/claim", json={"user": "alice", "collector": "c1", "printer": "p1"})
    app.test_client().get("/api/v1/jobs")  # no certificate
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert _sample(text, 'pullprint_analyst_jobs{state="held"}') == 1
    assert _sample(text, 'pullprint_analyst_jobs{state="releasing"}') == 1
    assert 'pullprint_analyst_jobs{state="printed"} 0.0' in text
    assert _sample(text, 'pullprint_analyst_events_total{kind="submit"}') == 2

    def grew(line_start: str) -> float:
        return _sample(text, line_start) - _sample(before, line_start)

    assert grew('pullprint_analyst_requests_total{endpoint="jobs.register",method="POST",status="201"}') == 2
    assert grew('pullprint_analyst_requests_total{endpoint="jobs.search",method="GET",status="401"}') == 1
    assert grew('pullprint_analyst_request_seconds_count{endpoint="jobs.register",method="POST"}') == 2
    assert grew('pullprint_analyst_request_seconds_bucket{endpoint="jobs.register",le="+Inf",method="POST"}') == 2
    assert "# TYPE pullprint_analyst_request_seconds histogram" in text


def test_printers_upsert_get_and_remove(api: Api) -> None:
    body = {"id": "p1", "uri": "socket://10.1.2.3:9100", "snmp_host": "10.1.2.3", "snmp_port": 161,
            "snmp_version": "2c", "snmp_community": "public", "site": "main",
            "location": "Building A, floor 2, room 210", "tags": ["color", "a3"], "in_service": True,
            "unreachable_policy": "allow"}
    created = api.post("/printers", json=body)
    assert (created.status_code, created.json) == (201, {"printer": {**body, **PRINTER_ADDITIONS}})
    updated = api.post("/printers", json={"id": "p1", "location": "room 211", "in_service": False})
    assert updated.status_code == 200
    assert updated.json["printer"] == {**body, **PRINTER_ADDITIONS, "location": "room 211", "in_service": False}
    assert api.get("/printers/p1").json["printer"]["location"] == "room 211"
    assert api.get("/printers").json["printers"] == [updated.json["printer"]]
    assert api.get("/printers/p2").status_code == 404
    assert api.post("/printers", json={"id": "p2"}).status_code == 400  # a new printer needs a uri
    assert [e["kind"] for e in api.get("/events").json["events"]] == ["printer-add", "printer-update"]
    assert api.delete("/printers/p1").status_code == 200
    assert api.get("/printers").json["printers"] == []


def test_heartbeat_and_alive_flag(api: Api, clock: Clock) -> None:
    c1 = api.as_("collector", "c1")
    first = c1.post("/collectors/c1/heartbeat", json={"url": "http://127.0.0.1:9001", "site": "main"})
    assert first.status_code == 200
    assert first.json["collectors"] == [{"id": "c1", "url": "http://127.0.0.1:9001", "site": "main",
                                         "last_seen": "2026-11-25T07:00:00+00:00", "alive": True,
                                         "version": "", "spool_jobs": None, "journal_entries": None}]
    clock.advance(seconds=3)
    api.as_("collector", "c2").post("/collectors/c2/heartbeat", json={"url": "http://127.0.0.1:9002", "site": "main"})
    clock.advance(seconds=3)
    alive = {c["id"]: c["alive"] for c in api.get("/collectors").json["collectors"]}
    assert alive == {"c1": False, "c2": True}
    # c1 comes back.
    answer = c1.post("/collectors/c1/heartbeat", json={"url": "http://127.0.0.1:9001", "site": "main"})
    assert {c["id"]: c["alive"] for c in answer.json["collectors"]} == {"c1": True, "c2": True}


def test_only_a_collector_itself_says_it_is_alive(api: Api) -> None:
    """The probe: a request that reaches the analyst as heartbeat of `evil` must not make `evil` alive."""
    for caller in (api, api.as_("collector", "c2"), api.as_("lb", "lb")):
        answer = caller.post("/collectors/evil/heartbeat", json={"url": "https://attacker:1", "site": "main"})
        assert answer.status_code == 403
    assert api.as_("collector", "c2").post("/collectors/c1/heartbeat", json={"url": "https://x:1"}).status_code == 403
    assert "evil" not in [c["id"] for c in api.get("/collectors").json["collectors"]]
    assert api.get("/collectors").json["collectors"] == []


def test_sync_gives_hashes_and_printers(api: Api) -> None:
    api.post("/users", json={"name": "alice", "badge": "0012345678", "pin": "472913"})
    api.post("/users", json={"name": "bob"})
    api.post("/printers", json={"id": "p1", "uri": "socket://10.1.2.3:9100"})
    sync = api.get("/sync").json
    users = {u["name"]: u for u in sync["users"]}
    assert set(users) == {"alice", "bob"}
    assert len(users["alice"]["badge_hash"]) == 64
    assert users["alice"]["pin_hash"].startswith("scrypt$")
    assert users["bob"] == {"name": "bob", "badge_hash": None, "pin_hash": None, "allowed": True}
    assert "0012345678" not in str(sync) and "472913" not in str(sync)
    assert [p["id"] for p in sync["printers"]] == ["p1"]


def test_event_log_covers_a_job_lifetime_and_pages(api: Api) -> None:
    api.post("/users", json={"name": "alice", "pin": "472913"})
    api.post("/printers", json={"id": "p1", "uri": "socket://10.1.2.3:9100"})
    api.post("/jobs", json=job_body("a"))
    api.post("/auth", json={"user": "alice", "pin": "472913", "printer": "p1"})
    token = api.post("/jobs/a/claim", json={"user": "alice", "collector": "c1", "printer": "p1"}).json["token"]
    api.post("/jobs/a/finish", json={"token": token, "state": "printed"})
    api.post("/jobs", json=job_body("b"))
    api.delete("/jobs/b", json={"user": "alice"})
    events = api.get("/events").json["events"]
    assert [e["kind"] for e in events] == ["printer-add", "submit", "login", "claim", "print", "submit", "delete"]
    assert all(e["at"].endswith("+00:00") for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    page = api.get(f"/events?since={ids[2]}&limit=2").json["events"]
    assert [e["kind"] for e in page] == ["claim", "print"]
    assert [e["job"] for e in api.get("/events?job=b").json["events"]] == ["b", "b"]
