"""Users and authentication: hashed badges and PINs, the PIN policy, indistinguishable failures, throttling."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import select

from analyst.users.models import User
from analyst.web import EXTENSION
from pullprint.credentials import badge_hash
from tests.analyst.conftest import PEPPER, Api, Clock, job_body

BAD = {"error": "bad-credentials", "message": "badge or PIN not recognised"}


def add_alice(api: Api) -> None:
    answer = api.post("/users", json={"name": "alice", "badge": "0012345678", "pin": "472913",
                                      "email": "alice@example.org"})
    assert answer.status_code == 201


def test_user_upsert_stores_only_hashes(app: Flask, api: Api) -> None:
    add_alice(api)
    with app.extensions[EXTENSION].db.session() as session:
        user = session.scalars(select(User)).one()
        assert user.badge_hash == badge_hash(PEPPER.encode(), "0012345678")
        assert "472913" not in (user.pin_hash or "")
    again = api.post("/users", json={"name": "alice", "email": "a@example.org"})
    assert again.status_code == 200
    assert again.json == {"user": {"name": "alice", "has_badge": True, "has_pin": True, "email": "a@example.org",
                                   "allowed": True}}
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
    assert api.post("/auth", json={"user": "alice", "pin": "472913", "printer": "p1"}).json == {"user": "alice"}


def test_a_login_lists_the_users_jobs_as_the_listing_does_when_asked(api: Api) -> None:
    add_alice(api)
    for n in range(3):
        assert api.post("/jobs", json=job_body(f"job{n}")).status_code == 201
    assert api.post("/jobs", json=job_body("bobs", owner="bob")).status_code == 201
    listing = api.get("/users/alice/jobs?limit=2").json
    answer = api.post("/auth", json={"badge": "0012345678", "printer": "p1", "jobs_limit": 2})
    assert answer.status_code == 200
    assert answer.json == {"user": "alice", "jobs": listing["jobs"], "total": 3}
    assert [j["id"] for j in answer.json["jobs"]] == ["job0", "job1"]  # hers alone, oldest first
    everything = api.post("/auth", json={"user": "alice", "pin": "472913", "printer": "p1", "jobs_limit": None})
    assert [j["id"] for j in everything.json["jobs"]] == ["job0", "job1", "job2"]
    # A wrong credential lists nothing; a bad limit is refused before any credential is looked at.
    wrong = api.post("/auth", json={"user": "alice", "pin": "000000", "printer": "p1", "jobs_limit": 2})
    assert (wrong.status_code, wrong.json) == (401, BAD)
    for bad in (0, -1, 10_001, "2", True, 1.5):
        refused = api.post("/auth", json={"badge": "0012345678", "printer": "p1", "jobs_limit": bad})
        assert (refused.status_code, refused.json["error"]) == (400, "bad-field"), bad


def test_unknown_badge_unknown_user_and_wrong_pin_look_the_same(api: Api) -> None:
    add_alice(api)
    answers = [api.post("/auth", json=body) for body in (
        {"badge": "999", "printer": "p1"},
        {"user": "nobody", "pin": "472913", "printer": "p1"},
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
    for secret in ("0012345678", "9999", "5550001", "472913"):
        assert secret not in text


def test_wrong_pins_slow_a_name_down_but_never_lock_it_out(api: Api, clock: Clock) -> None:
    add_alice(api)
    for _ in range(5):  # the free ones
        clock.advance(seconds=10)
        assert api.post("/auth", json={"user": "alice", "pin": "000000"}).status_code == 401
    slowed = api.post("/auth", json={"user": "alice", "pin": "472913"})
    assert slowed.status_code == 429
    assert slowed.json["error"] == "too-many-attempts"
    assert slowed.json["retry_after"] == 2
    assert slowed.headers["Retry-After"] == "2"
    # The badge is never slowed by a name: the card holder gets in.
    assert api.post("/auth", json={"badge": "0012345678"}).status_code == 200
    # Each further failure doubles the wait, up to a minute, and it stays a 429: never a lockout.
    waits = []
    for _ in range(8):
        clock.advance(seconds=slowed.json["retry_after"])
        assert api.post("/auth", json={"user": "alice", "pin": "000000"}).status_code == 401
        slowed = api.post("/auth", json={"user": "alice", "pin": "000000"})
        assert slowed.status_code == 429
        waits.append(slowed.json["retry_after"])
    assert waits == [4, 8, 16, 32, 60, 60, 60, 60]
    # The real user waits out one minute at most, and a success clears the count.
    clock.advance(seconds=60)
    assert api.post("/auth", json={"user": "alice", "pin": "472913"}).status_code == 200
    for _ in range(5):
        assert api.post("/auth", json={"user": "alice", "pin": "000000"}).status_code == 401
    clock.advance(seconds=2)
    assert api.post("/auth", json={"user": "alice", "pin": "472913"}).status_code == 200


def test_failures_spread_over_more_than_the_window_do_not_slow(api: Api, clock: Clock) -> None:
    add_alice(api)
    for _ in range(8):  # 4 at most in any 900 s
        clock.advance(seconds=200)
        assert api.post("/auth", json={"user": "alice", "pin": "000000"}).status_code == 401
    clock.advance(seconds=200)
    assert api.post("/auth", json={"user": "alice", "pin": "472913"}).status_code == 200


def test_unknown_names_are_slowed_the_same_way(api: Api) -> None:
    # Otherwise the answers would reveal which names exist.
    add_alice(api)
    answers = {}
    for name in ("ghost", "alice"):
        for _ in range(5):
            assert api.post("/auth", json={"user": name, "pin": "000000"}).status_code == 401
        answer = api.post("/auth", json={"user": name, "pin": "000000"})
        answers[name] = (answer.status_code, answer.json)
    assert answers["ghost"] == answers["alice"]
    assert answers["ghost"][0] == 429


def test_wrong_badges_at_one_terminal_are_throttled_then_locked(api: Api, clock: Clock) -> None:
    """The probe: wrong badges in a row from one terminal. The analyst limits what collectors report."""
    add_alice(api)
    at_t1 = {"terminal": "t-1", "source": "10.0.0.7"}
    add_terminal(api, "t-1")
    for i in range(10):
        clock.advance(seconds=1)
        assert api.post("/auth", json={"badge": f"99{i}", **at_t1}).status_code == 401
    answers = []
    for i in range(30):  # each refusal waited out, then one more wrong badge
        answer = api.post("/auth", json={"badge": f"88{i}", **at_t1})
        answers.append((answer.status_code, answer.json.get("retry_after")))
        if answer.status_code == 423:
            break
        if answer.status_code == 429:
            clock.advance(seconds=answer.json["retry_after"])
    # Past the 10 free ones a wrong badge goes through only after a wait that doubles: 2 s … 256 s,
    # then the cap: the terminal is locked out (423) for 5 minutes.
    assert [r for r in answers if r[0] != 401] == [(429, 2 ** n) for n in range(1, 9)] + [(423, 300)]
    locked = api.post("/auth", json={"badge": "0012345678", **at_t1})
    assert locked.status_code == 423 and locked.headers["Retry-After"] == str(locked.json["retry_after"])
    # Another terminal, another address: alice's badge works there.
    assert api.post("/auth", json={"badge": "0012345678", "terminal": "t-2", "source": "10.0.0.8"}).status_code == 403
    add_terminal(api, "t-2")
    assert api.post("/auth", json={"badge": "0012345678", "terminal": "t-2", "source": "10.0.0.8"}).json == {
        "user": "alice"}
    # The failures leave the window, and t-1 works again.
    clock.advance(seconds=900)
    assert api.post("/auth", json={"badge": "0012345678", **at_t1}).json == {"user": "alice"}


def test_a_source_address_is_limited_across_its_terminals(api: Api, clock: Clock) -> None:
    add_alice(api)
    for n in range(4):
        add_terminal(api, f"t-{n}")
    for i in range(20):  # 5 per terminal: under each terminal's 10, all 20 of the address's
        assert api.post("/auth", json={"badge": f"7{i}", "terminal": f"t-{i % 4}", "source": "10.0.0.9"}
                        ).status_code == 401
    answer = api.post("/auth", json={"badge": "0012345678", "terminal": "t-0", "source": "10.0.0.9"})
    assert answer.status_code == 429
    assert api.post("/auth", json={"badge": "0012345678", "terminal": "t-0", "source": "10.0.0.10"}).status_code == 200


def test_a_revoked_terminal_is_refused_at_once(api: Api) -> None:
    add_alice(api)
    add_terminal(api, "t-1")
    assert api.post("/auth", json={"badge": "0012345678", "terminal": "t-1"}).status_code == 200
    assert api.delete("/terminals/t-1").status_code == 200
    answer = api.post("/auth", json={"badge": "0012345678", "terminal": "t-1"})
    assert (answer.status_code, answer.json["error"]) == (403, "terminal-revoked")


def test_pin_checks_hold_no_write_lock(api: Api, app: Flask, monkeypatch) -> None:
    """PIN guesses under invented names must not queue registrations: the scrypt runs outside any
    transaction. A PIN check is held inside its (slowed) verify_pin while a job registers."""
    import threading

    from analyst.users import service

    real = service.verify_pin
    inside, release = threading.Event(), threading.Event()

    def held(pin: str, stored: str | None) -> bool:
        inside.set()
        release.wait(30)
        return real(pin, stored)

    monkeypatch.setattr(service, "verify_pin", held)
    collector = Api(app.test_client()).as_("collector", "c1")
    guess = threading.Thread(target=lambda: collector.post("/auth", json={"user": "r4nd0m", "pin": "000000"}))
    guess.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        registered = collector.post("/jobs", json=job_body("j1"))
        added = api.post("/users", json={"name": "dave", "badge": "0099"})
        took = time.monotonic() - started
    finally:
        release.set()
        guess.join(30)
    assert registered.status_code == 201 and added.status_code == 201
    assert took < 2.0, f"a registration waited {took:.1f} s behind a PIN check"


@pytest.mark.parametrize("pin, problem", [
    ("47291", "6-64 characters"),
    ("000000", "at least 3 different"),
    ("121212", "at least 3 different"),
    ("123456", "evenly spaced"),
    ("654321", "evenly spaced"),
    ("901234", "evenly spaced"),
    ("135791", "evenly spaced"),
    ("123123", "repeat a shorter pattern"),
    ("147258", "pick first"),
    ("Password", "pick first"),
    ("carol2024", "user name"),
])
def test_trivial_pins_are_refused(api: Api, pin: str, problem: str) -> None:
    answer = api.post("/users", json={"name": "carol", "pin": pin})
    assert answer.status_code == 400
    assert answer.json["error"] == "weak-pin" and answer.json["field"] == "pin"
    assert problem in answer.json["message"]
    assert answer.json["min_length"] == 6


def test_acceptable_pins_are_taken(api: Api) -> None:
    for pin in ("472913", "830517", "2580147", "correct horse battery"):
        assert api.post("/users", json={"name": "carol", "pin": pin}).status_code in (200, 201)


def add_terminal(api: Api, terminal_id: str) -> None:
    if api.get("/printers/p1").status_code == 404:
        assert api.post("/printers", json={"id": "p1", "uri": "socket://127.0.0.1:9100"}).status_code == 201
    assert api.post("/terminals", json={"printer": "p1", "id": terminal_id}).status_code == 201


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
