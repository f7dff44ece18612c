"""Users and authentication: hashed badges and PINs, indistinguishable failures, lockout."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from analyst.users.models import User
from analyst.web import EXTENSION
from pullprint.credentials import badge_hash
from tests.analyst.conftest import PEPPER, Api, Clock

BAD = {"error": "bad-credentials", "message": "badge or PIN not recognised"}


def add_alice(api: Api) -> None:
    answer = api.post("/users", json={"name": "alice", "badge": "0012345678", "pin": "4321",
                                      "email": "alice@example.org"})
    assert answer.status_code == 201


def test_user_upsert_stores_only_hashes(app: Flask, api: Api) -> None:
    add_alice(api)
    with app.extensions[EXTENSION].db.session() as session:
        user = session.scalars(select(User)).one()
        assert user.badge_hash == badge_hash(PEPPER.encode(), "0012345678")
        assert "4321" not in (user.pin_hash or "")
    again = api.post("/users", json={"name": "alice", "email": "a@example.org"})
    assert again.status_code == 200
    assert again.json == {"user": {"name": "alice", "has_badge": True, "has_pin": True, "email": "a@example.org"}}
    cleared = api.post("/users", json={"name": "alice", "pin": None})
    assert cleared.json["user"]["has_pin"] is False
    assert cleared.json["user"]["has_badge"] is True


def test_badge_belongs_to_one_user(api: Api) -> None:
    add_alice(api)
    answer = api.post("/users", json={"name": "bob", "badge": "0012345678"})
    assert answer.status_code == 409
    assert answer.json["error"] == "badge-taken"


def test_badge_and_pin_login(api: Api) -> None:
    add_alice(api)
    assert api.post("/auth", json={"badge": "0012345678", "printer": "p1"}).json == {"user": "alice"}
    # Badge readers may send surrounding whitespace.
    assert api.post("/auth", json={"badge": " 0012345678\n", "printer": "p1"}).json == {"user": "alice"}
    assert api.post("/auth", json={"user": "alice", "pin": "4321", "printer": "p1"}).json == {"user": "alice"}


def test_unknown_badge_unknown_user_and_wrong_pin_look_the_same(api: Api) -> None:
    add_alice(api)
    answers = [api.post("/auth", json=body) for body in (
        {"badge": "999", "printer": "p1"},
        {"user": "nobody", "pin": "4321", "printer": "p1"},
        {"user": "alice", "pin": "0000", "printer": "p1"},
    )]
    assert [(a.status_code, a.json) for a in answers] == [(401, BAD)] * 3

    # The same work either way, whether the name or badge exists or not (counted, not timed, so a
    # busy machine cannot make this flaky).
    import pullprint.credentials as credentials

    calls: list[bytes] = []
    real = credentials.hashlib.scrypt

    def counting(*args: object, **kwargs: object) -> bytes:
        calls.append(b"")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    credentials.verify_pin("warm", None)  # the dummy hash for unknown users is made once, up front
    credentials.hashlib.scrypt = counting  # type: ignore[assignment]
    try:
        per_attempt = []
        # unknown user, wrong PIN: one scrypt each; unknown badge, known badge: one HMAC lookup, no scrypt
        for body in ({"user": "nobody7", "pin": "1111"}, {"user": "alice", "pin": "1112"},
                     {"badge": "424242"}, {"badge": "0012345678"}):
            before = len(calls)
            api.post("/auth", json={"printer": "p1", **body})
            per_attempt.append(len(calls) - before)
    finally:
        credentials.hashlib.scrypt = real  # type: ignore[assignment]
    assert per_attempt == [1, 1, 0, 0]


def test_login_events_never_hold_the_secret(api: Api) -> None:
    add_alice(api)
    api.post("/auth", json={"badge": "0012345678", "printer": "p1", "collector": "c1"})
    api.post("/auth", json={"user": "alice", "pin": "9999", "printer": "p1"})
    api.post("/auth", json={"badge": "5550001", "printer": "p1"})
    events = api.get("/events").json["events"]
    logins = [(e["kind"], e["user"], e["printer"], e["detail"]["method"]) for e in events
              if e["kind"].startswith("login")]
    assert logins == [("login", "alice", "p1", "badge"), ("login-failed", "alice", "p1", "pin"),
                      ("login-failed", None, "p1", "badge")]
    text = str(events)
    for secret in ("0012345678", "9999", "5550001", "4321"):
        assert secret not in text


def test_lockout_after_five_wrong_pins(api: Api, clock: Clock) -> None:
    add_alice(api)
    for _ in range(5):
        clock.advance(seconds=10)
        assert api.post("/auth", json={"user": "alice", "pin": "0000"}).status_code == 401
    locked = api.post("/auth", json={"user": "alice", "pin": "4321"})
    assert locked.status_code == 423
    assert locked.json["error"] == "locked"
    assert 0 < locked.json["retry_after"] <= 300
    # The badge still works: lockout stops PIN guessing, not the card holder.
    assert api.post("/auth", json={"badge": "0012345678"}).status_code == 200
    clock.advance(seconds=locked.json["retry_after"])
    assert api.post("/auth", json={"user": "alice", "pin": "4321"}).status_code == 200
    # A success clears the count.
    for _ in range(4):
        assert api.post("/auth", json={"user": "alice", "pin": "0000"}).status_code == 401
    assert api.post("/auth", json={"user": "alice", "pin": "4321"}).status_code == 200


def test_failures_spread_over_more_than_the_window_do_not_lock(api: Api, clock: Clock) -> None:
    add_alice(api)
    for _ in range(8):
        clock.advance(seconds=80)
        assert api.post("/auth", json={"user": "alice", "pin": "0000"}).status_code == 401
    assert api.post("/auth", json={"user": "alice", "pin": "4321"}).status_code == 200


def test_unknown_names_lock_the_same_way(api: Api) -> None:
    # Otherwise lockout would reveal which names exist.
    for _ in range(5):
        api.post("/auth", json={"user": "ghost", "pin": "0000"})
    assert api.post("/auth", json={"user": "ghost", "pin": "0000"}).status_code == 423


def test_auth_needs_badge_or_user_and_pin(api: Api) -> None:
    assert api.post("/auth", json={"user": "alice"}).status_code == 400
    assert api.post("/auth", json={"badge": 12345}).status_code == 400


def test_remove_user(api: Api) -> None:
    add_alice(api)
    assert api.get("/users").json["users"][0]["name"] == "alice"
    assert api.delete("/users/alice").status_code == 200
    assert api.delete("/users/alice").status_code == 404
    assert api.post("/auth", json={"badge": "0012345678"}).status_code == 401


def test_user_input_is_checked(api: Api) -> None:
    assert api.post("/users", json={"name": "bad name"}).status_code == 400
    assert api.post("/users", json={"name": "carol", "pin": "12"}).status_code == 400
    assert api.post("/users", json={"name": "carol", "pin": 1234}).status_code == 400
