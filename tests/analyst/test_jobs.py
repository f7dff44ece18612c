"""Jobs: registration, listing, the claim compare-and-set with fencing tokens, finishing, deletion, expiry."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from analyst.jobs import service
from tests.analyst.conftest import Api, Clock, job_body


def claim(api: Api, job_id: str = "job1", collector: str = "c1", **fields: object):
    body = {"user": "alice", "collector": collector, "printer": "p1", **fields}
    return api.post(f"/jobs/{job_id}/claim", json=body)


def test_register_is_idempotent_by_id_and_by_key(api: Api) -> None:
    first = api.post("/jobs", json=job_body())
    assert first.status_code == 201
    assert first.json["created"] is True
    assert first.json["job"]["state"] == "held"
    assert first.json["job"]["expires_at"] > first.json["job"]["submitted_at"]

    again = api.post("/jobs", json=job_body())
    assert again.status_code == 200
    assert again.json == {"job": first.json["job"], "created": False}

    # The same CUPS job retried through another collector, which made up a new id.
    retried = api.post("/jobs", json=job_body("other-id", idempotency_key="urn:uuid:job1", locations=["c3"]))
    assert retried.status_code == 200
    assert retried.json["job"]["id"] == "job1"
    assert retried.json["job"]["locations"] == ["c1", "c2", "c3"]

    # Another user's job with the same key is a different job.
    bob = api.post("/jobs", json=job_body("bob-job", owner="bob", idempotency_key="urn:uuid:job1"))
    assert bob.status_code == 201


def test_register_without_id_gets_one(api: Api) -> None:
    body = job_body()
    del body["id"], body["idempotency_key"]
    answer = api.post("/jobs", json=body)
    assert answer.status_code == 201
    assert len(answer.json["job"]["id"]) == 32
    assert api.get(f"/jobs/{answer.json['job']['id']}").status_code == 200


def test_user_sees_open_jobs_with_locations_oldest_first(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body("old", locations=["c1"]))
    clock.advance(minutes=1)
    api.post("/jobs", json=job_body("new", locations=["c2", "c3"]))
    api.post("/jobs", json=job_body("bobs", owner="bob"))
    jobs = api.get("/users/alice/jobs").json["jobs"]
    assert [(j["id"], j["locations"], j["state"]) for j in jobs] == [("old", ["c1"], "held"),
                                                                     ("new", ["c2", "c3"], "held")]
    assert jobs[0]["options"] == {"sides": "two-sided-long-edge"}
    assert jobs[0]["claim"] is None


def test_user_listing_is_capped_by_limit_and_counts_them_all(api: Api, clock: Clock) -> None:
    for n in range(5):
        api.post("/jobs", json=job_body(f"j{n}"))
        clock.advance(seconds=1)
    capped = api.get("/users/alice/jobs?limit=2").json
    assert [j["id"] for j in capped["jobs"]] == ["j0", "j1"] and capped["total"] == 5
    everything = api.get("/users/alice/jobs").json
    assert len(everything["jobs"]) == 5 and everything["total"] == 5
    assert api.get("/users/alice/jobs?limit=0").status_code == 400
    assert api.get("/users/alice/jobs?limit=many").status_code == 400


def test_list_jobs_by_state_and_location(api: Api) -> None:
    api.post("/jobs", json=job_body("a", locations=["c1"]))
    api.post("/jobs", json=job_body("b", locations=["c2"]))
    claim(api, "b")
    assert [j["id"] for j in api.get("/jobs?state=held").json["jobs"]] == ["a"]
    assert [j["id"] for j in api.get("/jobs?location=c2").json["jobs"]] == ["b"]
    assert api.get("/jobs?state=held&location=c2").json["jobs"] == []
    assert api.get("/jobs?state=bogus").status_code == 400


def test_list_interrupted_jobs_by_reason(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body("cut"))
    api.post("/jobs", json=job_body("plain"))
    claim(api, "cut", lease_seconds=30)
    clock.advance(minutes=5)  # the lease and its grace are over: the releaser is gone
    assert [j["id"] for j in api.post("/maintenance/expire").json["interrupted"]] == ["cut"]
    assert [j["id"] for j in api.get("/jobs?state=held&reason=interrupted").json["jobs"]] == ["cut"]
    assert [j["id"] for j in api.get("/jobs?state=held").json["jobs"]] == ["cut", "plain"]


def test_lookup_answers_many_jobs_in_one_call(api: Api) -> None:
    api.post("/jobs", json=job_body("a", locations=["c1"]))
    api.post("/jobs", json=job_body("b", locations=["c2"]))
    api.delete("/jobs/b", json={"reason": "test"})
    found = api.post("/jobs/lookup", json={"ids": ["a", "b", "unknown"]}).json["jobs"]
    assert {k: v["state"] for k, v in found.items()} == {"a": "held", "b": "deleted"}
    assert found["a"]["locations"] == ["c1"]
    assert api.post("/jobs/lookup", json={"ids": "a"}).status_code == 400
    assert api.post("/jobs/lookup", json={"ids": ["x"] * 1001}).status_code == 400


def test_claim_is_compare_and_set(api: Api) -> None:
    api.post("/jobs", json=job_body())
    won = claim(api, lease_seconds=60)
    assert won.status_code == 200
    assert won.json["token"] == 1
    assert won.json["job"]["state"] == "releasing"
    assert won.json["job"]["claim"]["by"] == "c1"
    assert won.json["job"]["claim"]["token"] == 1

    lost = claim(api, collector="c2")
    assert lost.status_code == 409
    assert lost.json["error"] == "not-releasable"
    assert lost.json["state"] == "releasing"

    assert claim(api, user="mallory").status_code == 403
    assert claim(api, user="mallory").json["error"] == "not-owner"
    assert claim(api, "nope").status_code == 404


def test_concurrent_claims_exactly_one_wins(app: Flask, api: Api) -> None:
    for n in range(5):
        api.post("/jobs", json=job_body(f"race{n}"))
    for n in range(5):
        barrier = threading.Barrier(8)
        results: list[tuple[int, int | None]] = []
        lock = threading.Lock()

        def contender(i: int, job_id: str = f"race{n}", barrier: threading.Barrier = barrier) -> None:
            client = Api(app.test_client())
            barrier.wait()
            answer = claim(client, job_id, collector=f"c{i}")
            with lock:
                results.append((answer.status_code, (answer.json or {}).get("token")))

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(status for status, _ in results) == [200] + [409] * 7
        assert [token for status, token in results if status == 200] == [1]
        assert api.get(f"/events?kind=claim&job=race{n}").json["events"].__len__() == 1


def test_renewal_keeps_a_slow_claim_and_refuses_a_superseded_one(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body())
    first = claim(api, collector="c1", lease_seconds=30).json["token"]
    clock.advance(seconds=25)
    renewed = api.post("/jobs/job1/renew", json={"token": first, "lease_seconds": 30})
    assert renewed.status_code == 200 and renewed.json["job"]["state"] == "releasing"
    clock.advance(seconds=25)  # 50 s after the claim, 25 s after the renewal: still c1's
    assert claim(api, collector="c2", confirm_interrupted=True).status_code == 409
    # Its holder waited for the printer past its lease: the job was declared interrupted, and
    # nobody claimed it since, so the renewal gives it back to its holder.
    clock.advance(minutes=5)
    assert [j["id"] for j in api.post("/maintenance/expire").json["interrupted"]] == ["job1"]
    assert api.post("/jobs/job1/renew", json={"token": first, "lease_seconds": 30}).json["job"]["state"] == \
        "releasing"
    # Once the user confirmed a new release, the old claim is stale: its holder must not send.
    clock.advance(minutes=5)
    api.post("/maintenance/expire")
    second = claim(api, collector="c2", lease_seconds=30, confirm_interrupted=True)
    assert second.status_code == 200 and second.json["token"] == first + 1
    stale = api.post("/jobs/job1/renew", json={"token": first, "lease_seconds": 30})
    assert stale.status_code == 409 and stale.json["error"] == "stale-token"
    assert api.post("/jobs/nope/renew", json={"token": 1}).status_code == 404
    assert api.post("/jobs/job1/renew", json={}).status_code == 400


def test_lapsed_lease_is_taken_over_with_a_higher_token(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body())
    first = claim(api, collector="c1", lease_seconds=30)
    assert first.json["token"] == 1
    clock.advance(seconds=29)
    assert claim(api, collector="c2").status_code == 409
    clock.advance(seconds=2)
    # The first releaser may have printed it: a plain claim (a retry, a double tap) is refused…
    plain = claim(api, collector="c2", lease_seconds=30)
    assert plain.status_code == 409 and plain.json["error"] == "interrupted"
    # …and only a user who looked at the printer and confirmed takes it over.
    second = claim(api, collector="c2", lease_seconds=30, confirm_interrupted=True)
    assert second.status_code == 200
    assert second.json["token"] == 2
    assert second.json["job"]["claim"]["by"] == "c2"

    # The first releaser woke up late: its token is fenced off.
    stale = api.post("/jobs/job1/finish", json={"token": 1, "state": "printed"})
    assert stale.status_code == 409
    assert stale.json["error"] == "stale-token"
    done = api.post("/jobs/job1/finish", json={"token": 2, "state": "printed", "printer": "p1",
                                               "collector": "c2"})
    assert done.status_code == 200
    assert done.json["job"]["state"] == "printed"
    assert api.get("/jobs/job1").json["job"]["state"] == "printed"


def test_printed_is_accounted_once_and_finish_is_retry_safe(app: Flask, api: Api) -> None:
    api.post("/printers", json={"id": "p1", "uri": "socket://10.0.0.5:9100", "site": "north"})
    api.post("/jobs", json=job_body())
    token = claim(api).json["token"]
    body = {"token": token, "state": "printed", "printer": "p1", "collector": "c1", "pages": 3, "copies": 2}
    assert api.post("/jobs/job1/finish", json=body).status_code == 200
    # A retry after a lost answer succeeds without a second accounting row.
    assert api.post("/jobs/job1/finish", json=body).status_code == 200
    prints = api.get("/events?kind=print").json["events"]
    assert len(prints) == 1
    assert prints[0]["user"] == "alice"
    assert prints[0]["printer"] == "p1"
    assert prints[0]["detail"]["pages"] == 3
    assert prints[0]["detail"]["copies"] == 2
    assert prints[0]["detail"]["site"] == "north"

    from sqlalchemy import select

    from analyst.accounting.models import PrintRecord
    from analyst.web import EXTENSION

    with app.extensions[EXTENSION].db.session() as session:
        rows = list(session.scalars(select(PrintRecord)))
    assert [(r.user_name, r.printer_id, r.collector_id, r.pages, r.copies, r.site) for r in rows] == [
        ("alice", "p1", "c1", 3, 2, "north")]
    # Once printed it can never be released again.
    assert claim(api).status_code == 409


def test_failed_release_returns_job_to_held_with_a_reason(api: Api) -> None:
    api.post("/jobs", json=job_body())
    token = claim(api).json["token"]
    answer = api.post("/jobs/job1/finish", json={"token": token, "state": "held",
                                                 "reason": "printer-error:media-empty"})
    assert answer.status_code == 200
    jobs = api.get("/users/alice/jobs").json["jobs"]
    assert [(j["state"], j["state_reason"], j["claim"]) for j in jobs] == [
        ("held", "printer-error:media-empty", None)]
    event = api.get("/events?kind=release-failed").json["events"][0]
    assert event["detail"]["reason"] == "printer-error:media-empty"
    # The job can be released again, under a new token.
    assert claim(api).json["token"] == token + 1


def test_failed_state_is_visible_and_releasable(api: Api) -> None:
    api.post("/jobs", json=job_body())
    token = claim(api).json["token"]
    api.post("/jobs/job1/finish", json={"token": token, "state": "failed", "reason": "printer-error:jam"})
    assert api.get("/users/alice/jobs").json["jobs"][0]["state"] == "failed"
    assert claim(api).status_code == 200


def test_finish_checks_its_input(api: Api) -> None:
    api.post("/jobs", json=job_body())
    token = claim(api).json["token"]
    assert api.post("/jobs/job1/finish", json={"token": token, "state": "releasing"}).status_code == 400
    assert api.post("/jobs/job1/finish", json={"token": "1", "state": "printed"}).status_code == 400
    assert api.post("/jobs/job1/finish", json={"state": "printed"}).status_code == 400
    assert api.post("/jobs/nope/finish", json={"token": 1, "state": "printed"}).status_code == 404


def test_delete_by_owner_only(api: Api) -> None:
    api.post("/jobs", json=job_body())
    assert api.delete("/jobs/job1", json={"user": "bob"}).status_code == 403
    deleted = api.delete("/jobs/job1", json={"user": "alice", "reason": "changed my mind"})
    assert deleted.status_code == 200
    assert deleted.json["job"]["state"] == "deleted"
    assert api.delete("/jobs/job1").status_code == 200  # already gone: same answer
    assert api.get("/users/alice/jobs").json["jobs"] == []
    assert claim(api).status_code == 409
    assert api.get("/events?kind=delete").json["events"][0]["job"] == "job1"
    assert api.delete("/jobs/nope").status_code == 404


def test_releasing_job_cannot_be_deleted(api: Api) -> None:
    api.post("/jobs", json=job_body())
    claim(api)
    answer = api.delete("/jobs/job1")
    assert answer.status_code == 409
    assert answer.json["error"] == "not-deletable"


def test_locations_are_recorded_and_forgotten(api: Api) -> None:
    api.post("/jobs", json=job_body(locations=["c1"]))
    assert api.put("/jobs/job1/locations/c2").json["job"]["locations"] == ["c1", "c2"]
    assert api.put("/jobs/job1/locations/c2").json["job"]["locations"] == ["c1", "c2"]
    assert api.delete("/jobs/job1/locations/c1").json["job"]["locations"] == ["c2"]
    assert api.put("/jobs/nope/locations/c2").status_code == 404
    assert api.put("/jobs/job1/locations/bad%20id").status_code == 400


def test_expiry_moves_old_held_jobs_and_names_them(api: Api, clock: Clock) -> None:
    api.post("/jobs", json=job_body("old"))
    api.post("/jobs", json=job_body("releasing"))
    clock.advance(hours=4)
    api.post("/jobs", json=job_body("young"))
    assert api.post("/maintenance/expire").json == {"expired": [], "interrupted": []}
    clock.advance(hours=4, seconds=1)
    # Past its lifetime, but its releaser holds a live lease: it is not taken away under it.
    claim(api, "releasing", lease_seconds=60)
    expired = api.post("/maintenance/expire").json["expired"]
    assert [(j["id"], j["state"], j["locations"]) for j in expired] == [("old", "expired", ["c1", "c2"])]
    assert api.post("/maintenance/expire").json == {"expired": [], "interrupted": []}
    assert [j["id"] for j in api.get("/users/alice/jobs").json["jobs"]] == ["releasing", "young"]
    assert [e["job"] for e in api.get("/events?kind=expire").json["events"]] == ["old"]
    assert claim(api, "old").status_code == 409


def test_explicit_expiry_time_is_kept(api: Api) -> None:
    answer = api.post("/jobs", json=job_body(submitted_at="2026-11-25T08:00:00+01:00",
                                             expires_at="2026-11-25T09:30:00Z"))
    assert answer.json["job"]["submitted_at"] == "2026-11-25T07:00:00+00:00"
    assert answer.json["job"]["expires_at"] == "2026-11-25T09:30:00+00:00"


def test_claim_blocked_by_an_open_claim_loses_once_it_commits(app: Flask, api: Api, clock: Clock) -> None:
    """The database, not luck, decides: a claim racing an uncommitted one waits for it, then loses."""
    from analyst.jobs import service
    from analyst.web import EXTENSION

    api.post("/jobs", json=job_body())
    results: list[int] = []
    with app.extensions[EXTENSION].db.session(write=True) as session:
        _, token = service.claim_job(session, "job1", user="alice", collector="c1", printer="p1",
                                     lease_seconds=60, now=clock())
        assert token == 1
        rival = threading.Thread(target=lambda: results.append(claim(Api(app.test_client()),
                                                                     collector="c2").status_code))
        rival.start()
        rival.join(0.5)
        assert rival.is_alive(), "the rival claim must wait for the open transaction"
    rival.join(30)
    assert results == [409]
    assert api.get("/jobs/job1").json["job"]["claim"]["by"] == "c1"


def test_expiry_sweeps_in_batches_and_names_every_job_once(api: Api, clock: Clock,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Three jobs per transaction: seven due jobs take three batches, the last one short.
    monkeypatch.setattr(service, "EXPIRE_BATCH", 3)
    names = [f"old{i}" for i in range(7)]
    for name in names:
        api.post("/jobs", json=job_body(name, idempotency_key=f"urn:uuid:{name}"))
    api.post("/jobs", json=job_body("releasing", idempotency_key="urn:uuid:releasing"))
    clock.advance(hours=4)
    api.post("/jobs", json=job_body("young", idempotency_key="urn:uuid:young"))
    clock.advance(hours=4, seconds=1)
    claim(api, "releasing", lease_seconds=60)
    expired = api.post("/maintenance/expire").json["expired"]
    assert [(j["id"], j["state"], j["locations"]) for j in expired] == [(n, "expired", ["c1", "c2"]) for n in names]
    assert api.post("/maintenance/expire").json == {"expired": [], "interrupted": []}
    assert sorted(e["job"] for e in api.get("/events?kind=expire&limit=100").json["events"]) == names
    assert [j["id"] for j in api.get("/users/alice/jobs").json["jobs"]] == ["releasing", "young"]



def test_expiry_batch_leaves_a_job_claimed_meanwhile(app: Flask, api: Api, clock: Clock) -> None:
    """A sweep that starts while a claim of a due job is still uncommitted waits for it and then
    leaves the claimed job alone: the UPDATE re-checks what its batch chose."""
    from analyst.web import EXTENSION

    api.post("/jobs", json=job_body())
    api.post("/jobs", json=job_body("other", idempotency_key="urn:uuid:other"))
    clock.advance(hours=8, seconds=1)
    answers: list[dict] = []
    with app.extensions[EXTENSION].db.session(write=True) as session:
        service.claim_job(session, "job1", user="alice", collector="c1", printer="p1", lease_seconds=60,
                          now=clock())
        sweep = threading.Thread(target=lambda: answers.append(Api(app.test_client()).post("/maintenance/expire").json))
        sweep.start()
        sweep.join(0.5)
        assert sweep.is_alive(), "the sweep must wait for the open claim"
    sweep.join(30)
    assert [j["id"] for j in answers[0]["expired"]] == ["other"]
    assert api.get("/jobs/job1").json["job"]["state"] == "releasing"


def test_a_collectors_listing_reads_every_page_once(api: Api, clock: Clock) -> None:
    """GET /jobs gives a cursor on a full page; the collector's client follows it to the end.
    Jobs submitted in the same instant are ordered by id, so none is skipped or listed twice."""
    from collector.analyst_client import AnalystClient

    held = [f"j{i}" for i in range(7)]
    for i, name in enumerate(held):
        if i % 3 == 0:
            clock.advance(seconds=1)  # some share a submission time, some do not
        api.post("/jobs", json=job_body(name, idempotency_key=f"urn:uuid:{name}"))
    api.post("/jobs", json=job_body("elsewhere", idempotency_key="urn:uuid:else", locations=["c3"],
                                    received_by="c3"))
    client = AnalystClient("https://analyst.invalid", None, 5)
    asked: list[dict] = []

    def request(method: str, url: str, **kwargs: Any) -> Any:
        asked.append(dict(kwargs["params"]))
        answer = api.open(url.removeprefix(client.base), method=method, query_string=kwargs["params"])
        assert answer.status_code == 200, answer.json
        return type("Response", (), {"json": lambda self: answer.json})()

    client._request = request  # type: ignore[method-assign]
    assert [job["id"] for job in client.jobs(location="c1", limit="3")] == held
    assert len(asked) == 3 and "after" not in asked[0] and all("after" in page for page in asked[1:])
    assert [job["id"] for job in client.jobs(location="c3")] == ["elsewhere"]
    assert "next" not in api.get("/jobs?location=c1&limit=8").json  # a page that is not full ends it


@pytest.mark.parametrize("cursor", ["nonsense", "2026-13-01T00:00:00+00:00,j1", "2026-01-01T00:00:00+00:00,",
                                    "2026-01-01T00:00:00+00:00," + "x" * 65])
def test_a_listing_cursor_it_did_not_give_is_refused(api: Api, cursor: str) -> None:
    answer = api.get("/jobs", query_string={"after": cursor})
    assert answer.status_code == 400 and answer.json["field"] == "after"
