"""Users by email (mail and upload intake): unique addresses in the serviced domains, the resolve call a
collector makes for a sender, auto-provisioning, and denied users (refused at login, jobs kept)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from analyst.app import create_app
from analyst.web import EXTENSION
from tests.analyst.conftest import Api, Clock, job_body, make_config


@pytest.fixture
def policy_app(db_url: str, clock: Clock, request: pytest.FixtureRequest) -> Iterator[Flask]:
    auto = getattr(request, "param", False)
    app = create_app(make_config(db_url, serviced_domains=["example.org"], auto_provision=auto))
    app.extensions[EXTENSION].clock = clock
    yield app
    app.extensions[EXTENSION].db.dispose()


@pytest.fixture
def papi(policy_app: Flask) -> Api:
    return Api(policy_app.test_client())


def test_addresses_are_unique_lower_case_and_in_a_serviced_domain(papi: Api) -> None:
    assert papi.post("/users", json={"name": "alice", "email": " Alice@Example.ORG "}).json["user"]["email"] == \
        "alice@example.org"
    taken = papi.post("/users", json={"name": "bob", "email": "ALICE@example.org"})
    assert taken.status_code == 409 and taken.json["error"] == "email-taken"
    elsewhere = papi.post("/users", json={"name": "bob", "email": "bob@elsewhere.example"})
    assert elsewhere.status_code == 400 and elsewhere.json["error"] == "not-serviced"
    for bad in ("bob", "bob@", "@example.org", "bob@@example.org", "bob smith@example.org", "bob@example..org",
                "bob@example.org\r\nBcc: x@example.org"):
        answer = papi.post("/users", json={"name": "bob", "email": bad})
        assert answer.status_code == 400, bad
    assert papi.post("/users", json={"name": "bob", "email": "bob@example.org"}).status_code == 201


def test_a_collector_resolves_a_sender_and_hears_why_not(papi: Api) -> None:
    papi.post("/users", json={"name": "alice", "email": "alice@example.org"})
    collector = papi.as_("collector", "c1")
    found = collector.post("/identities/email", json={"email": "ALICE@example.org"})
    assert found.status_code == 200 and found.json == {"user": "alice", "email": "alice@example.org",
                                                       "provisioned": False, "guest": False}
    unknown = collector.post("/identities/email", json={"email": "dave@example.org"})
    assert unknown.status_code == 403 and unknown.json["error"] == "unknown-user"
    outside = collector.post("/identities/email", json={"email": "eve@elsewhere.example"})
    assert outside.status_code == 403 and outside.json["error"] == "not-serviced"
    assert papi.as_("print-server", "ps1").post("/identities/email", json={"email": "alice@example.org"}) \
        .status_code == 403  # only collectors (and administrators) ask
    assert papi.get("/users").json["users"] == [{"name": "alice", "has_badge": False, "has_pin": False,
                                                 "email": "alice@example.org", "allowed": True}]


@pytest.mark.parametrize("policy_app", [True], indirect=True)
def test_auto_provisioning_makes_one_user_per_new_address_of_a_serviced_domain(papi: Api) -> None:
    papi.post("/users", json={"name": "dave"})  # a name already taken by someone without this address
    collector = papi.as_("collector", "c1")
    first = collector.post("/identities/email", json={"email": "dave@example.org"})
    assert first.status_code == 200 and first.json["provisioned"] is True and first.json["user"] == "dave-2"
    again = collector.post("/identities/email", json={"email": "Dave@example.org"})
    assert again.json == {"user": "dave-2", "email": "dave@example.org", "provisioned": False, "guest": False}
    assert collector.post("/identities/email", json={"email": "eve@elsewhere.example"}).status_code == 403
    events = papi.get("/events?kind=user-provisioned").json["events"]
    assert [e["user"] for e in events] == ["dave-2"]


def test_a_denied_user_cannot_log_in_or_be_resolved_and_keeps_held_jobs(papi: Api) -> None:
    papi.post("/users", json={"name": "alice", "email": "alice@example.org", "badge": "0012345678",
                              "pin": "472913"})
    collector = papi.as_("collector", "c1")
    assert collector.post("/jobs", json=job_body("job1")).status_code == 201
    assert papi.post("/users", json={"name": "alice", "allowed": False}).json["user"]["allowed"] is False
    badge = collector.post("/auth", json={"badge": "0012345678", "printer": "p1"})
    assert badge.status_code == 403 and badge.json["error"] == "user-denied"
    pin = collector.post("/auth", json={"user": "alice", "pin": "472913", "printer": "p1"})
    assert pin.status_code == 403 and pin.json["error"] == "user-denied"
    wrong = collector.post("/auth", json={"user": "alice", "pin": "999999x", "printer": "p1"})
    assert wrong.status_code == 401  # a wrong PIN says nothing about the account
    assert collector.post("/identities/email", json={"email": "alice@example.org"}).json["error"] == "user-denied"
    assert collector.get("/users/alice/jobs").json["total"] == 1  # held, untouched
    assert next(u for u in collector.get("/sync").json["users"] if u["name"] == "alice")["allowed"] is False
    papi.post("/users", json={"name": "alice", "allowed": True})
    assert collector.post("/auth", json={"badge": "0012345678", "printer": "p1"}).json == {"user": "alice"}


@pytest.fixture
def guest_api(db_url: str, clock: Clock) -> Iterator[Api]:
    app = create_app(make_config(db_url, serviced_domains=["example.org"], guest_printing=True))
    app.extensions[EXTENSION].clock = clock
    yield Api(app.test_client())
    app.extensions[EXTENSION].db.dispose()


def test_guests_outside_the_serviced_domains_release_one_job_by_its_code(guest_api: Api) -> None:
    from analyst.users.service import guest_name
    from pullprint.credentials import release_code_hash
    from tests.analyst.conftest import PEPPER

    collector = guest_api.as_("collector", "c1")
    sender = collector.post("/identities/email", json={"email": "Visitor@Partner.example"}).json
    assert sender == {"user": guest_name("visitor@partner.example"), "email": "visitor@partner.example",
                      "provisioned": False, "guest": True}
    assert guest_api.get("/users").json["users"] == []  # a guest is no account
    digest = release_code_hash(PEPPER.encode(), "4045698253")
    body = job_body("g1", owner=sender["user"], release_code_hash=digest)
    assert collector.post("/jobs", json=body).status_code == 201
    assert collector.post("/jobs", json=job_body("g2", owner=sender["user"])).status_code == 201
    bad = collector.post("/jobs", json=job_body("g3", owner=sender["user"], release_code_hash="not-hex"))
    assert bad.status_code == 400
    # The code, however it is spaced, names the one job; a wrong one is an ordinary miss.
    assert collector.post("/auth", json={"code": "404 569 8253", "printer": "p1"}).json == {
        "user": sender["user"], "job": "g1"}
    assert collector.post("/auth", json={"code": "4045698254", "printer": "p1"}).status_code == 401
    # It dies with the job: printed (or expired, deleted), the code opens nothing.
    claim = collector.post("/jobs/g1/claim", json={"collector": "c1", "printer": "p1", "user": sender["user"]}).json
    collector.post("/jobs/g1/finish", json={"token": claim["token"], "state": "printed", "printer": "p1",
                                            "collector": "c1"})
    assert collector.post("/auth", json={"code": "4045698253", "printer": "p1"}).status_code == 401
    # The site's own domains are still users only.
    assert collector.post("/identities/email", json={"email": "dave@example.org"}).json["error"] == "unknown-user"
