"""Enrolled terminals at the analyst: added for a printer (token shown once, digest kept), one-time
enrollment codes, revocation, what collectors sync, who may call what, and the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from analyst.app import create_app
from analyst.cli import printer_main
from analyst.terminals.cli import main as terminal_main
from analyst.terminals.models import Terminal
from analyst.web import EXTENSION
from pullprint.credentials import token_digest
from pullprint.errors import PullprintError
from tests.analyst.conftest import PEPPER, Api, Clock, make_config


@pytest.fixture
def printer(api: Api) -> str:
    assert api.post("/printers", json={"id": "p1", "uri": "socket://127.0.0.1:9100"}).status_code == 201
    return "p1"


def test_a_terminal_is_added_for_a_printer_and_only_its_digest_is_kept(api: Api, app: Flask, printer: str) -> None:
    answer = api.post("/terminals", json={"printer": printer, "description": "by the kitchen"})
    assert answer.status_code == 201
    terminal, token = answer.json["terminal"], answer.json["token"]
    assert terminal["printer"] == "p1" and terminal["active"] and terminal["description"] == "by the kitchen"
    assert len(token) >= 40
    with app.extensions[EXTENSION].db.session() as session:
        row = session.scalars(select(Terminal)).one()
        assert row.token_hash == token_digest(token)
    # Never shown again: not in the list, not in one terminal's record, not in the events.
    for text in (api.get("/terminals").data, api.get(f"/terminals/{terminal['id']}").data, api.get("/events").data):
        assert token.encode() not in text and token_digest(token).encode() not in text
    assert [t["id"] for t in api.get("/terminals").json["terminals"]] == [terminal["id"]]


def test_adding_needs_a_known_printer_and_a_good_id(api: Api, printer: str) -> None:
    assert api.post("/terminals", json={"printer": "p9"}).status_code == 404
    assert api.post("/terminals", json={"printer": "p1", "id": "bad id"}).status_code == 400
    assert api.post("/terminals", json={"printer": "p1", "id": "kiosk-1"}).status_code == 201
    assert api.post("/terminals", json={"printer": "p1", "id": "kiosk-1"}).status_code == 409


def test_the_sync_gives_collectors_active_terminals_by_digest(api: Api, printer: str) -> None:
    one = api.post("/terminals", json={"printer": printer, "id": "t-one"}).json
    api.post("/terminals", json={"printer": printer, "id": "t-two"})
    collector = api.as_("collector", "c1")
    synced = collector.get("/sync").json["terminals"]
    assert {"id": "t-one", "printer": "p1", "token_hash": token_digest(one["token"])} in synced
    assert api.delete("/terminals/t-two").json["terminal"]["active"] is False
    assert [t["id"] for t in collector.get("/sync").json["terminals"]] == ["t-one"]


def test_a_collector_asks_after_a_credential_it_has_not_synced(api: Api, printer: str) -> None:
    token = api.post("/terminals", json={"printer": printer, "id": "new"}).json["token"]
    collector = api.as_("collector", "c1")
    found = collector.post("/terminals/lookup", json={"token_hash": token_digest(token)})
    assert found.json == {"terminal": {"id": "new", "printer": "p1"}}
    assert collector.post("/terminals/lookup", json={"token_hash": token_digest("guess")}).status_code == 404
    api.delete("/terminals/new")
    assert collector.post("/terminals/lookup", json={"token_hash": token_digest(token)}).status_code == 404


def test_an_enrollment_code_works_once_and_replaces_the_credential(api: Api, printer: str, clock: Clock) -> None:
    first = api.post("/terminals", json={"printer": printer, "id": "kiosk"}).json["token"]
    link = api.post("/terminals/kiosk/enrollment")
    assert link.status_code == 201
    code = link.json["code"]
    assert link.json["path"] == f"/release/enroll#code={code}"
    assert link.json["terminal"]["enrollment_pending"] is True
    collector = api.as_("collector", "c1")
    # Typed by hand: case, spaces and dashes do not matter.
    redeemed = collector.post("/terminals/enroll", json={"code": code.lower().replace("-", " ")})
    assert redeemed.status_code == 201
    token = redeemed.json["token"]
    assert token != first and redeemed.json["terminal"]["id"] == "kiosk"
    synced = {t["token_hash"] for t in collector.get("/sync").json["terminals"]}
    assert synced == {token_digest(token)}  # the old credential is gone
    again = collector.post("/terminals/enroll", json={"code": code})
    assert (again.status_code, again.json["error"]) == (403, "enrollment-refused")


def test_an_expired_or_revoked_enrollment_code_is_refused(api: Api, printer: str, clock: Clock) -> None:
    api.post("/terminals", json={"printer": printer, "id": "kiosk"})
    collector = api.as_("collector", "c1")
    code = api.post("/terminals/kiosk/enrollment").json["code"]
    clock.advance(minutes=15, seconds=1)
    assert collector.post("/terminals/enroll", json={"code": code}).status_code == 403
    short = api.post("/terminals/kiosk/enrollment", json={"valid_minutes": 2}).json["code"]
    clock.advance(minutes=1)
    api.delete("/terminals/kiosk")
    assert collector.post("/terminals/enroll", json={"code": short}).status_code == 403
    assert api.post("/terminals/kiosk/enrollment").status_code == 409  # revoked: add a new one
    assert collector.post("/terminals/enroll", json={"code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 403


def test_a_new_link_replaces_a_pending_one(api: Api, printer: str) -> None:
    api.post("/terminals", json={"printer": printer, "id": "kiosk"})
    old = api.post("/terminals/kiosk/enrollment").json["code"]
    new = api.post("/terminals/kiosk/enrollment").json["code"]
    collector = api.as_("collector", "c1")
    assert collector.post("/terminals/enroll", json={"code": old}).status_code == 403
    assert collector.post("/terminals/enroll", json={"code": new}).status_code == 201


def test_only_administrators_manage_terminals(api: Api, printer: str) -> None:
    collector = api.as_("collector", "c1")
    assert collector.post("/terminals", json={"printer": printer}).status_code == 403
    assert collector.get("/terminals").status_code == 403
    api.post("/terminals", json={"printer": printer, "id": "kiosk"})
    assert collector.post("/terminals/kiosk/enrollment").status_code == 403
    assert collector.delete("/terminals/kiosk").status_code == 403


def test_terminal_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text(PEPPER)
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.delenv("PULLPRINT_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'analyst.db'}"

    def run(*argv: str) -> str:
        out = io.StringIO()
        assert terminal_main([*argv, "--db-url", url], out=out) == 0
        return out.getvalue()

    assert printer_main(["add", "p1", "--uri", "socket://127.0.0.1:9100", "--db-url", url], out=io.StringIO()) == 0
    token = run("add", "p1", "--id", "kiosk", "--description", "lobby").strip()
    app = create_app(make_config(url))
    try:
        collector = Api(app.test_client()).as_("collector", "c1")
        assert {t["token_hash"] for t in collector.get("/sync").json["terminals"]} == {token_digest(token)}
        assert run("list").splitlines() == ["kiosk\tprinter=p1\tactive\tlobby"]
        link = run("link", "kiosk", "--base-url", "https://print.example.org/").strip()
        assert link.startswith("https://print.example.org/release/enroll#code=")
        assert "link until" in run("list")
        assert collector.post("/terminals/enroll", json={"code": link.split("=", 1)[1]}).status_code == 201
        assert run("revoke", "kiosk") == "revoked terminal kiosk\n"
        assert collector.get("/sync").json["terminals"] == []
        with pytest.raises(PullprintError, match="no printer"):
            run("add", "p9")
    finally:
        app.extensions[EXTENSION].db.dispose()
