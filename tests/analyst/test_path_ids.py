"""Ids in the analyst's URL paths are checked before any view runs (issue 9): a malformed one is a 400,
never a 500 and never another resource."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analyst.conftest import Api, job_body


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analyst.db'}"  # path checks come before any SQL: one database is enough


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/jobs/job1%0A"),                       # a trailing newline used to pass the `$` of ID_PATTERN
    ("post", "/jobs/..%2Fmaintenance%2Fexpire%23/claim"),
    ("post", "/jobs/%2E%2E/renew"),
    ("post", "/jobs/-job/finish"),
    ("delete", "/jobs/" + "j" * 65),
    ("put", "/jobs/job1/locations/evil%20c"),
    ("post", "/collectors/evil%0A/heartbeat"),
    ("get", "/printers/p1%0A"),
    ("get", "/users/al%2Fice/jobs"),
])
def test_a_malformed_id_in_a_path_is_a_400(api: Api, method: str, path: str) -> None:
    assert api.post("/jobs", json=job_body("job1")).status_code == 201
    answer = getattr(api, method)(path, json={"user": "alice", "collector": "c1", "printer": "p1", "token": 1,
                                              "state": "printed"})
    if "%2F" in path:  # the WSGI server decodes %2F: no route has that many segments
        assert answer.status_code == 404 and answer.json["error"] == "not-found", path
    else:
        assert answer.status_code == 400, (path, answer.status_code, answer.json)
        assert answer.json["error"] == "bad-field"
    collectors = api.get("/collectors").json["collectors"]
    assert [c for c in collectors if c["id"].startswith("evil")] == []


def test_well_formed_ids_still_reach_their_views(api: Api) -> None:
    assert api.post("/jobs", json=job_body("job1")).status_code == 201
    assert api.get("/jobs/job1").status_code == 200
    assert api.get("/jobs/nosuchjob").status_code == 404
    heartbeat = api.as_("collector", "c1").post("/collectors/c1/heartbeat", json={"url": "http://127.0.0.1:1"})
    assert heartbeat.status_code == 200
