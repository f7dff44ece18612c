"""Releases interrupted by a dying collector, and calls replayed by collectors after the analyst was away."""

from __future__ import annotations

from tests.analyst.conftest import Api, Clock, job_body


def claim(api: Api, job_id: str = "job1", collector: str = "c1", **fields: object):
    return api.post(f"/jobs/{job_id}/claim", json={"user": "alice", "collector": collector, "printer": "p1", **fields})


def test_lapsed_release_goes_back_to_held_after_the_grace(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body())
    claim(api, lease_seconds=60)
    clock.advance(seconds=60 + 30)  # lapsed exactly lease_grace_seconds ago: not yet
    assert api.post("/maintenance/expire").json == {"expired": [], "interrupted": []}
    clock.advance(seconds=1)
    answer = api.post("/maintenance/expire").json
    assert answer["expired"] == []
    assert [(j["id"], j["state"], j["state_reason"], j["claim"]) for j in answer["interrupted"]] == [
        ("job1", "held", "interrupted", None)]
    assert api.post("/maintenance/expire").json["interrupted"] == []  # once
    event = api.get("/events?kind=release-interrupted").json["events"]
    assert [(e["job"], e["user"], e["collector"], e["printer"], e["detail"]) for e in event] == [
        ("job1", "alice", "c1", "p1", {"token": 1})]
    # The user sees it again; a plain claim (a retry, a double tap) is refused with the reason…
    assert [j["state"] for j in api.get("/users/alice/jobs").json["jobs"]] == ["held"]
    plain = claim(api, collector="c2")
    assert (plain.status_code, plain.json["error"]) == (409, "interrupted")
    # …and once they confirm, the new claim fences the old releaser out.
    again = claim(api, collector="c2", confirm_interrupted=True)
    assert (again.json["token"], again.json["job"]["state_reason"]) == (2, "")
    late = api.post("/jobs/job1/finish", json={"token": 1, "state": "printed"})
    assert (late.status_code, late.json["error"]) == (409, "stale-token")


def test_grace_is_configurable(db_url: str, clock: Clock) -> None:
    from analyst.app import create_app
    from analyst.web import EXTENSION
    from tests.analyst.conftest import make_config

    app = create_app(make_config(db_url, lease_grace_seconds=0))
    app.extensions[EXTENSION].clock = clock
    try:
        api = Api(app.test_client())
        api.post("/jobs", json=job_body())
        claim(api, lease_seconds=10)
        clock.advance(seconds=10.5)
        assert [j["id"] for j in api.post("/maintenance/expire").json["interrupted"]] == ["job1"]
    finally:
        app.extensions[EXTENSION].db.dispose()


def test_the_interrupted_releaser_may_still_report_what_happened(api: Api, clock: Clock) -> None:
    """Slow, not dead: while no one has claimed the job since, its own finish is taken (and accounted)."""
    api.post("/jobs", json=job_body())
    token = claim(api, lease_seconds=5).json["token"]
    clock.advance(seconds=60)
    api.post("/maintenance/expire")
    done = api.post("/jobs/job1/finish", json={"token": token, "state": "printed"})
    assert done.status_code == 200
    assert done.json["job"]["state"] == "printed"
    assert api.get("/events?kind=print").json["events"][0]["detail"]["late"] is True
    assert api.get("/reports/pages?by=user").json["rows"][0]["jobs"] == 1
    # And a retry of that finish is still harmless.
    assert api.post("/jobs/job1/finish", json={"token": token, "state": "printed"}).status_code == 200
    assert api.get("/reports/pages?by=user").json["rows"][0]["jobs"] == 1


def test_a_lapsed_claim_can_still_be_taken_over_before_the_sweep(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body())
    claim(api, lease_seconds=5)
    clock.advance(seconds=6)
    assert claim(api, collector="c2").json["error"] == "interrupted"  # not without the user's word
    takeover = claim(api, collector="c2", confirm_interrupted=True)
    assert (takeover.status_code, takeover.json["token"]) == (200, 2)
    clock.advance(seconds=40)
    assert api.post("/maintenance/expire").json["interrupted"] == []  # c2's lease is live


def test_offline_replay_keeps_original_times(api: Api, clock: Clock) -> None:
    clock.advance(hours=2)  # the analyst comes back at 09:00; the collector worked alone from 07:10
    registered = api.post("/jobs", json=job_body(offline=True, at="2026-11-25T07:10:00Z"))
    assert registered.status_code == 201
    assert registered.json["job"]["submitted_at"] == "2026-11-25T07:10:00+00:00"
    assert registered.json["job"]["expires_at"] == "2026-11-25T15:10:00+00:00"
    # Replaying the registration again (the journal was sent twice) changes nothing.
    again = api.post("/jobs", json=job_body(offline=True, at="2026-11-25T07:10:00Z"))
    assert (again.status_code, again.json["created"]) == (200, False)

    token = claim(api, offline=True, at="2026-11-25T07:30:00Z").json["token"]
    finished = api.post("/jobs/job1/finish", json={"token": token, "state": "printed", "offline": True,
                                                   "at": "2026-11-25T07:31:00Z"})
    assert finished.json["job"]["state"] == "printed"

    events = api.get("/events?offline=true").json["events"]
    assert [(e["kind"], e["at"], e["detail"]["offline"], e["detail"]["replayed_at"]) for e in events] == [
        ("submit", "2026-11-25T07:10:00+00:00", True, "2026-11-25T09:00:00+00:00"),
        ("claim", "2026-11-25T07:30:00+00:00", True, "2026-11-25T09:00:00+00:00"),
        ("print", "2026-11-25T07:31:00+00:00", True, "2026-11-25T09:00:00+00:00")]
    assert api.get("/events?offline=false").json["events"] == []
    assert api.get("/events?offline=maybe").status_code == 400
    # Accounted at the time it printed, not when the analyst heard of it.
    rows = api.get("/reports/pages?by=user&from=2026-11-25T07:00:00Z&to=2026-11-25T08:00:00Z").json["rows"]
    assert [(r["key"], r["jobs"]) for r in rows] == [("alice", 1)]


def test_offline_claim_lease_runs_from_the_replay(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body())
    clock.advance(hours=1)
    answer = claim(api, offline=True, at="2026-11-25T07:05:00Z", lease_seconds=60)
    assert answer.json["job"]["claim"]["lease_expires_at"] == "2026-11-25T08:01:00+00:00"


def test_offline_times_are_checked_and_never_in_the_future(api: Api, clock: Clock) -> None:
    assert api.post("/jobs", json=job_body(offline=True, at="yesterday")).status_code == 400
    assert api.post("/jobs", json=job_body(offline="yes")).status_code == 400
    assert api.post("/jobs", json=job_body(at="soon")).status_code == 400
    # A collector whose clock runs ahead: the event is dated now.
    api.post("/jobs", json=job_body(offline=True, at="2026-11-25T08:00:00Z"))
    event = api.get("/events?kind=submit").json["events"][0]
    assert (event["at"], event["detail"]["offline"]) == ("2026-11-25T07:00:00+00:00", True)
    # "at" without "offline" is an ordinary call, dated by the analyst.
    api.post("/jobs", json=job_body("job2", at="2026-11-25T06:00:00Z"))
    event = api.get("/events?kind=submit&job=job2").json["events"][0]
    assert event["at"] == "2026-11-25T07:00:00+00:00"
    assert "offline" not in event["detail"]


def test_replayed_failure_is_logged_offline(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body())
    clock.advance(minutes=30)
    token = claim(api, offline=True, at="2026-11-25T07:10:00Z").json["token"]
    api.post("/jobs/job1/finish", json={"token": token, "state": "held", "reason": "printer-error:media-jam",
                                        "offline": True, "at": "2026-11-25T07:11:00Z"})
    event = api.get("/events?kind=release-failed").json["events"][0]
    assert (event["at"], event["detail"]["reason"], event["detail"]["offline"]) == (
        "2026-11-25T07:11:00+00:00", "printer-error:media-jam", True)
