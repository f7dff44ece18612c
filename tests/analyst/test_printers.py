"""Printers for people: structured location, tags, capabilities, search; SNMPv3 secrets; status and service."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from analyst.app import create_app
from analyst.cli import printer_main
from tests.analyst.conftest import PG_PASSWORD, Api, Clock, make_config

FLEET = [
    {"id": "hall-mfp", "uri": "socket://10.0.0.1:9100", "site": "north", "location": "Main hall, by the stairs",
     "building": "Alpha", "floor": "0", "room": "Hall", "tags": ["reception"], "capabilities": ["duplex", "color"]},
    {"id": "p-a3", "uri": "socket://10.0.0.2:9100", "site": "north", "location": "Print room",
     "building": "Alpha", "floor": "2", "room": "210", "tags": ["Finance"], "capabilities": ["duplex", "a3", "staple"]},
    {"id": "lab", "uri": "socket://10.0.0.3:9100", "site": "south", "location": "", "building": "Beta",
     "floor": "2", "room": "Lab 3", "tags": [], "capabilities": ["duplex"]},
]


def ids(api: Api, query: str) -> list[str]:
    answer = api.get(f"/printers?{query}")
    assert answer.status_code == 200, answer.json
    return [p["id"] for p in answer.json["printers"]]


def test_structured_location_and_search(api: Api) -> None:
    for body in FLEET:
        assert api.post("/printers", json=body).status_code == 201
    printer = api.get("/printers/p-a3").json["printer"]
    assert (printer["location"], printer["building"], printer["floor"], printer["room"]) == (
        "Print room", "Alpha", "2", "210")
    assert printer["capabilities"] == ["duplex", "a3", "staple"]

    assert ids(api, "") == ["hall-mfp", "lab", "p-a3"]
    assert ids(api, "q=STAIRS") == ["hall-mfp"]          # location text
    assert ids(api, "q=beta") == ["lab"]                 # building
    assert ids(api, "q=lab") == ["lab"]                  # id and room
    assert ids(api, "q=finance") == ["p-a3"]             # tag
    assert ids(api, "q=21") == ["p-a3"]                  # room
    assert ids(api, "tag=FINANCE") == ["p-a3"]
    assert ids(api, "capability=duplex&capability=color") == ["hall-mfp"]
    assert ids(api, "capability=a3") == ["p-a3"]
    assert ids(api, "site=North") == ["hall-mfp", "p-a3"]
    assert ids(api, "building=alpha&floor=2") == ["p-a3"]
    assert ids(api, "floor=2") == ["lab", "p-a3"]
    assert ids(api, "site=north&q=lab") == []
    assert api.get("/printers?q=" + "x" * 300).status_code == 400
    # Bad capability names are refused like bad tags.
    bad = api.post("/printers", json={"id": "x", "uri": "socket://h:9100", "capabilities": ["two words"]})
    assert (bad.status_code, bad.json["field"]) == (400, "capabilities")


def test_snmp_v3_keys_are_only_given_to_collectors(api: Api) -> None:
    body = {"id": "p1", "uri": "socket://10.0.0.1:9100", "snmp_host": "10.0.0.1", "snmp_version": "3",
            "snmp_v3_user": "monitor", "snmp_v3_auth_protocol": "sha256", "snmp_v3_auth_key": "auth-secret-1",
            "snmp_v3_priv_protocol": "AES", "snmp_v3_priv_key": "priv-secret-1"}
    created = api.post("/printers", json=body)
    assert created.status_code == 201
    for answer in (created.json["printer"], api.get("/printers/p1").json["printer"],
                   api.get("/printers").json["printers"][0]):
        assert (answer["snmp_v3_user"], answer["snmp_v3_auth_protocol"], answer["snmp_v3_priv_protocol"]) == (
            "monitor", "SHA256", "AES")
        assert (answer["snmp_v3_auth_key"], answer["snmp_v3_priv_key"]) == ("***", "***")
    for path in ("/printers", "/printers/p1", "/events"):
        assert "secret-1" not in api.get(path).get_data(as_text=True)

    synced = api.get("/sync").json["printers"][0]
    assert (synced["snmp_v3_auth_key"], synced["snmp_v3_priv_key"]) == ("auth-secret-1", "priv-secret-1")

    # A client that sends back what it read (the mask) keeps the stored keys; a new key replaces one.
    echoed = api.post("/printers", json={**created.json["printer"], "location": "moved"})
    assert echoed.status_code == 200
    api.post("/printers", json={"id": "p1", "snmp_v3_priv_key": "priv-secret-2"})
    synced = api.get("/sync").json["printers"][0]
    assert (synced["snmp_v3_auth_key"], synced["snmp_v3_priv_key"]) == ("auth-secret-1", "priv-secret-2")
    # "" removes a key: without privacy the authentication key may stay, not the other way round.
    api.post("/printers", json={"id": "p1", "snmp_v3_priv_key": ""})
    assert api.get("/printers/p1").json["printer"]["snmp_v3_priv_key"] == ""
    refused = api.post("/printers", json={"id": "p1", "snmp_v3_auth_key": "", "snmp_v3_priv_key": "priv-secret-3"})
    assert (refused.status_code, refused.json["field"]) == (400, "snmp_v3_auth_key")


@pytest.mark.parametrize(("fields", "field"), [
    ({"snmp_version": "3", "snmp_host": "h"}, "snmp_v3_user"),
    ({"snmp_v3_auth_protocol": "SHA1024"}, "snmp_v3_auth_protocol"),
    ({"snmp_v3_priv_protocol": "ROT13"}, "snmp_v3_priv_protocol"),
    ({"snmp_v3_auth_key": "short"}, "snmp_v3_auth_key"),
    ({"snmp_v3_user": "u", "snmp_v3_priv_key": "only-privacy"}, "snmp_v3_auth_key"),
])
def test_snmp_v3_settings_are_checked(api: Api, fields: dict[str, str], field: str) -> None:
    answer = api.post("/printers", json={"id": "p1", "uri": "socket://h:9100", **fields})
    assert (answer.status_code, answer.json["field"]) == (400, field), answer.json


def status(api: Api, printer: str = "p1", **fields: object):
    return api.put(f"/printers/{printer}/status", json={"collector": "c1", **fields})


def test_status_is_stored_and_logged_only_on_change(api: Api, clock: Clock) -> None:
    api.post("/printers", json={"id": "p1", "uri": "socket://h:9100"})
    assert api.get("/printers/p1").json["printer"]["status"] is None

    first = status(api, state="ok", uptime=1000, polled_at="2026-11-25T07:00:00Z")
    assert first.status_code == 200
    assert first.json["changed"] is True
    assert first.json["printer"]["status"] == {
        "state": "ok", "reason": "", "warnings": [], "errors": [], "polled_at": "2026-11-25T07:00:00+00:00",
        "collector": "c1", "uptime": 1000.0, "since": "2026-11-25T07:00:00+00:00"}

    clock.advance(seconds=15)
    same = status(api, state="ok", uptime=1015)
    assert same.json["changed"] is False
    assert same.json["printer"]["status"]["since"] == "2026-11-25T07:00:00+00:00"
    assert same.json["printer"]["status"]["polled_at"] == "2026-11-25T07:00:15+00:00"

    clock.advance(seconds=15)
    warn = status(api, state="warning", reason="toner-low", warnings=["toner-low", "door-open"], uptime=1030)
    assert warn.json["changed"] is True
    clock.advance(seconds=15)
    # The same warnings in another order are not a change.
    assert status(api, state="warning", reason="toner-low", warnings=["door-open", "toner-low"],
                  uptime=1045).json["changed"] is False
    clock.advance(seconds=15)
    error = status(api, state="error", reason="media-jam", errors=["media-jam"], warnings=["toner-low"], uptime=1060)
    assert error.json["printer"]["status"]["since"] == "2026-11-25T07:01:00+00:00"
    clock.advance(seconds=15)
    # It was switched off and on: the jam is gone and the uptime went down.
    status(api, state="ok", uptime=20)
    clock.advance(seconds=15)
    status(api, state="ok", uptime=35)

    events = api.get("/events?kind=printer-status").json["events"]
    assert [(e["detail"]["state"], e["detail"]["previous_state"], e["printer"], e["collector"]) for e in events] == [
        ("ok", None, "p1", "c1"), ("warning", "ok", "p1", "c1"), ("error", "warning", "p1", "c1"),
        ("ok", "error", "p1", "c1")]
    assert events[2]["detail"]["errors"] == ["media-jam"]
    rebooted = api.get("/events?kind=printer-rebooted").json["events"]
    assert [(e["detail"]["uptime"], e["detail"]["previous_uptime"]) for e in rebooted] == [(20.0, 1060.0)]


def test_an_older_reading_does_not_overwrite_a_newer_one(api: Api, clock: Clock) -> None:
    api.post("/printers", json={"id": "p1", "uri": "socket://h:9100"})
    status(api, state="error", reason="media-empty", polled_at="2026-11-25T07:00:00Z")
    late = status(api, state="ok", polled_at="2026-11-25T06:59:50Z", collector="c2")
    assert late.status_code == 200
    assert late.json["changed"] is False
    assert late.json["printer"]["status"]["state"] == "error"


def test_status_input_is_checked(api: Api) -> None:
    api.post("/printers", json={"id": "p1", "uri": "socket://h:9100"})
    for body in ({}, {"state": "on-fire"}, {"state": "ok", "warnings": "toner"}, {"state": "ok", "uptime": -1},
                 {"state": "ok", "polled_at": "now"}, {"state": "ok", "collector": "bad id"}):
        answer = api.put("/printers/p1/status", json=body)
        assert answer.status_code == 400, body
    assert status(api, "ghost", state="ok").status_code == 404


def test_operator_takes_a_printer_out_of_service(api: Api) -> None:
    api.post("/printers", json={"id": "p1", "uri": "socket://h:9100"})
    out = api.put("/printers/p1/service", json={"in_service": False, "reason": "drum replacement"})
    assert out.status_code == 200
    assert (out.json["printer"]["in_service"], out.json["printer"]["service_reason"]) == (False, "drum replacement")
    api.put("/printers/p1/service", json={"in_service": False, "reason": "drum replacement"})  # no change
    back = api.put("/printers/p1/service", json={"in_service": True, "reason": "new drum"})
    assert (back.json["printer"]["in_service"], back.json["printer"]["service_reason"]) == (True, "")
    events = api.get("/events?kind=printer-service").json["events"]
    assert [(e["detail"]["in_service"], e["detail"]["reason"]) for e in events] == [
        (False, "drum replacement"), (True, "new drum")]
    assert api.put("/printers/p1/service", json={"reason": "x"}).status_code == 400
    assert api.put("/printers/ghost/service", json={"in_service": False}).status_code == 404


def test_printer_cli_inventory_and_snmp_v3(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULLPRINT_ANALYST_CLUSTER_TOKEN", "t")
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER", "p")
    monkeypatch.setenv("PULLPRINT_ANALYST_DB_PASSWORD", PG_PASSWORD)  # the test PostgreSQL's
    (tmp_path / "auth").write_text("cli-auth-secret\n")
    (tmp_path / "priv").write_text("cli-priv-secret\n")
    out = io.StringIO()
    assert printer_main(["add", "p1", "--uri", "socket://10.1.2.3:9100", "--snmp", "10.1.2.3", "--snmp-version", "3",
                         "--snmp-v3-user", "monitor", "--snmp-v3-auth-protocol", "sha",
                         "--snmp-v3-auth-key-file", str(tmp_path / "auth"), "--snmp-v3-priv-protocol", "AES256",
                         "--snmp-v3-priv-key-file", str(tmp_path / "priv"), "--building", "Alpha", "--floor", "2",
                         "--room", "210", "--capability", "duplex", "color", "--capability", "a3",
                         "--db-url", db_url], out=out) == 0
    app = create_app(make_config(db_url))
    try:
        api = Api(app.test_client())
        printer = api.get("/printers/p1").json["printer"]
        assert (printer["building"], printer["floor"], printer["room"]) == ("Alpha", "2", "210")
        assert printer["capabilities"] == ["duplex", "color", "a3"]
        assert (printer["snmp_v3_user"], printer["snmp_v3_auth_protocol"], printer["snmp_v3_priv_protocol"],
                printer["snmp_v3_auth_key"]) == ("monitor", "SHA", "AES256", "***")
        synced = api.get("/sync").json["printers"][0]
        assert (synced["snmp_v3_auth_key"], synced["snmp_v3_priv_key"]) == ("cli-auth-secret", "cli-priv-secret")
        out = io.StringIO()
        printer_main(["list", "--db-url", db_url], out=out)
        assert "place=Alpha, floor 2, room 210\tcapabilities=duplex,color,a3" in out.getvalue()
        assert "secret" not in out.getvalue()
    finally:
        app.extensions["pullprint.analyst"].db.dispose()
    from pullprint.errors import PullprintError

    with pytest.raises(PullprintError, match="snmp-v3-auth-key-file"):
        printer_main(["add", "p1", "--snmp-v3-auth-key-file", str(tmp_path / "missing"), "--db-url", db_url])
