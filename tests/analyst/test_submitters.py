"""Submitting hosts' credentials (issue 9) and the per-user quota at registration, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from analyst.app import create_app
from analyst.submitters.cli import main as submitter_main
from analyst.web import EXTENSION
from tests.analyst.conftest import PEPPER, PG_PASSWORD, Api, Clock, job_body, make_config


def test_a_host_credential_is_shown_once_stored_as_a_digest_and_revocable(api: Api) -> None:
    issued = api.post("/submitters", json={"host": "printsrv1.example.org", "description": "floor 2"})
    assert issued.status_code == 201, issued.json
    token = issued.json["token"]
    assert len(token) >= 40 and issued.json["submitter"] == {
        "host": "printsrv1.example.org", "description": "floor 2", "created_at": issued.json["submitter"]["created_at"],
        "revoked_at": None, "active": True}
    listing = api.get("/submitters").json["submitters"]
    assert [s["host"] for s in listing] == ["printsrv1.example.org"]
    assert token not in json.dumps(listing) and hashlib.sha256(token.encode()).hexdigest() not in json.dumps(listing)
    # Collectors get the digest, never the token, and only for active hosts.
    collector = api.as_("collector", "c1")
    synced = collector.get("/sync").json["submitters"]
    assert synced == [{"host": "printsrv1.example.org", "token_hash": hashlib.sha256(token.encode()).hexdigest()}]
    # Issuing again replaces the credential (rotation): the old digest is gone from the sync.
    again = api.post("/submitters", json={"host": "printsrv1.example.org"})
    assert again.status_code == 200 and again.json["token"] != token
    assert collector.get("/sync").json["submitters"][0]["token_hash"] == hashlib.sha256(
        again.json["token"].encode()).hexdigest()
    assert again.json["submitter"]["description"] == "floor 2"
    revoked = api.delete("/submitters/printsrv1.example.org")
    assert revoked.status_code == 200 and revoked.json["submitter"]["active"] is False
    assert collector.get("/sync").json["submitters"] == []
    assert api.delete("/submitters/nobody.example").status_code == 404


def test_a_collector_asks_after_a_credential_it_has_not_synced(api: Api) -> None:
    token = api.post("/submitters", json={"host": "ws-new.example"}).json["token"]
    collector = api.as_("collector", "c1")

    def lookup(secret: str) -> tuple[int, dict]:
        answer = collector.post("/submitters/lookup", json={"token_hash": hashlib.sha256(secret.encode()).hexdigest()})
        return answer.status_code, answer.json

    status, body = lookup(token)
    assert status == 200 and body["submitter"]["host"] == "ws-new.example" and body["submitter"]["active"] is True
    assert token not in json.dumps(body) and hashlib.sha256(token.encode()).hexdigest() not in json.dumps(body)
    assert lookup("a-guess") == (404, {"error": "unknown-submitter",
                                       "message": "no active submitting host has this credential"})
    assert collector.post("/submitters/lookup", json={"token_hash": ""}).status_code == 400
    assert collector.post("/submitters/lookup", json={"token_hash": "x" * 65}).status_code == 400
    api.delete("/submitters/ws-new.example")
    assert lookup(token)[0] == 404  # revoked


def test_only_administrators_issue_credentials_and_hosts_are_checked(api: Api) -> None:
    assert api.as_("collector", "c1").post("/submitters", json={"host": "evil"}).status_code == 403
    assert api.as_("collector", "c1").get("/submitters").status_code == 403
    for bad in ("", "has space", "../etc", "a/b", "x" * 300):
        answer = api.post("/submitters", json={"host": bad})
        assert answer.status_code == 400, bad


@pytest.fixture
def quota_app(db_url: str) -> Iterator[Flask]:
    app = create_app(make_config(db_url, max_held_jobs_per_user=2, max_held_bytes_per_user=30_000))
    app.extensions[EXTENSION].clock = Clock()
    yield app
    app.extensions[EXTENSION].db.dispose()


def test_the_quota_refuses_a_new_job_past_either_limit_naming_it(quota_app: Flask) -> None:
    api = Api(quota_app.test_client(), "collector", "c1")
    assert api.post("/jobs", json=job_body("j1", size=10_000)).status_code == 201
    assert api.post("/jobs", json=job_body("j2", size=10_000)).status_code == 201
    over = api.post("/jobs", json=job_body("j3", size=10))
    assert over.status_code == 409, over.json
    assert over.json["error"] == "quota-exceeded" and over.json["limit"] == "max_held_jobs_per_user"
    assert "alice already has 2 held jobs and may hold at most 2" in over.json["message"]
    # A retry of an existing job is not a new job; a journal replay was acknowledged already: both taken.
    assert api.post("/jobs", json=job_body("j1", size=10_000)).status_code == 200
    replayed = api.post("/jobs", json={**job_body("j4", size=10), "offline": True, "at": "2026-01-01T00:00:00Z"})
    assert replayed.status_code == 201, replayed.json
    # Other users are not affected; the bytes limit counts the new job's size.
    assert api.post("/jobs", json=job_body("b1", owner="bob", size=25_000)).status_code == 201
    too_big = api.post("/jobs", json=job_body("b2", owner="bob", size=6_000))
    assert too_big.status_code == 409 and too_big.json["limit"] == "max_held_bytes_per_user", too_big.json
    assert "would pass the 29.3 KiB one user may hold" in too_big.json["message"]
    # A printed or deleted job no longer counts.
    assert api.delete("/jobs/j1").status_code == 200
    assert api.delete("/jobs/j4").status_code == 200
    assert api.post("/jobs", json=job_body("j5", size=10)).status_code == 201


def test_the_submitter_command_issues_lists_and_revokes(db_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pepper").write_text(PEPPER)
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER_FILE", str(tmp_path / "pepper"))
    (tmp_path / "db-password").write_text(PG_PASSWORD)  # PostgreSQL's; SQLite ignores it
    monkeypatch.setenv("PULLPRINT_ANALYST_DB_PASSWORD_FILE", str(tmp_path / "db-password"))
    monkeypatch.delenv("PULLPRINT_CONFIG", raising=False)

    def run(*argv: str) -> str:
        out = io.StringIO()
        assert submitter_main([*argv, "--db-url", db_url], out=out) == 0
        return out.getvalue()

    token_file = tmp_path / "ws1.token"
    assert "issued a credential for ws1" in run("add", "ws1", "--token-file", str(token_file))
    assert token_file.stat().st_mode & 0o777 == 0o600 and len(token_file.read_text().strip()) >= 40
    assert run("list").startswith("ws1\tactive")
    assert run("revoke", "ws1") == "revoked submitting host ws1\n"
    assert "\trevoked " in run("list")
    printed = run("add", "ws2")
    assert len(printed.strip()) >= 40  # the token alone on stdout, for a pipe
