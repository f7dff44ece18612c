"""Accounting: what a print counts, and the pages report per user, printer and site (JSON and CSV)."""

from __future__ import annotations

import csv
import io

import pytest

from analyst.accounting.service import count_print
from tests.analyst.conftest import Api, Clock, job_body


def print_job(api: Api, job_id: str, *, owner: str = "alice", printer: str = "p1", **fields: object) -> None:
    assert api.post("/jobs", json=job_body(job_id, owner=owner, **fields)).status_code == 201
    token = api.post(f"/jobs/{job_id}/claim", json={"user": owner, "collector": "c1", "printer": printer}).json["token"]
    assert api.post(f"/jobs/{job_id}/finish", json={"token": token, "state": "printed"}).status_code == 200


@pytest.mark.parametrize(("pages", "copies", "options", "expected"), [
    (3, 2, {"sides": "two-sided-long-edge"}, (True, False, 6, 4)),
    (3, 2, {"sides": "one-sided", "print-color-mode": "color"}, (False, True, 6, 6)),
    (5, 1, {"number-up": "2", "sides": "two-sided-short-edge"}, (True, False, 5, 2)),
    (4, 1, {"Duplex": "DuplexNoTumble", "ColorModel": "CMYK"}, (True, True, 4, 2)),
    (4, 1, {"print-color-mode": "monochrome", "ColorModel": "RGB"}, (False, False, 4, 4)),
    (4, 1, {}, (False, False, 4, 4)),
    (None, 3, {"sides": "two-sided-long-edge"}, (True, False, None, None)),
])
def test_count_print(pages: int | None, copies: int, options: dict[str, str],
                     expected: tuple[bool, bool, int | None, int | None]) -> None:
    counts = count_print(pages, copies, options)
    assert (counts.duplex, counts.color, counts.impressions, counts.sheets) == expected


def test_report_by_user_printer_and_site(api: Api, clock: Clock) -> None:
    api.post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100", "site": "north"})
    api.post("/printers", json={"id": "p2", "uri": "socket://10.0.0.2:9100", "site": "south"})
    print_job(api, "a1", pages=3, copies=2, options={"sides": "two-sided-long-edge"})
    print_job(api, "a2", pages=10, copies=1, options={"print-color-mode": "color"}, printer="p2")
    print_job(api, "b1", owner="bob", pages=None, copies=2, options={}, printer="p2")
    print_job(api, "b2", owner="bob", pages=1, copies=1, options={})

    users = api.get("/reports/pages?by=user")
    assert users.status_code == 200
    assert users.json["rows"] == [
        {"key": "alice", "jobs": 2, "pages": 13, "unknown_page_jobs": 0, "copies": 3, "impressions": 16,
         "sheets": 14, "duplex_jobs": 1, "color_jobs": 1},
        # b1's pages are unknown: counted as a job and as unknown, never as 0 pages.
        {"key": "bob", "jobs": 2, "pages": 1, "unknown_page_jobs": 1, "copies": 3, "impressions": 1,
         "sheets": 1, "duplex_jobs": 0, "color_jobs": 0},
    ]
    assert users.json["total"] == {"jobs": 4, "pages": 14, "unknown_page_jobs": 1, "copies": 6, "impressions": 17,
                                   "sheets": 15, "duplex_jobs": 1, "color_jobs": 1}
    printers = {r["key"]: (r["jobs"], r["impressions"]) for r in api.get("/reports/pages?by=printer").json["rows"]}
    assert printers == {"p1": (2, 7), "p2": (2, 10)}
    sites = {r["key"]: r["pages"] for r in api.get("/reports/pages?by=site").json["rows"]}
    assert sites == {"north": 4, "south": 10}

    # The accounting row keeps what the event says too.
    event = api.get("/events?kind=print&job=a1").json["events"][0]
    expected = {"pages": 3, "copies": 2, "impressions": 6, "sheets": 4, "duplex": True, "color": False, "site": "north"}
    assert {k: event["detail"][k] for k in expected} == expected


def test_report_by_source_the_way_each_job_came_in(api: Api, clock: Clock) -> None:
    print_job(api, "lp1", pages=2, origin_host="print-server-1")
    print_job(api, "mail1", pages=3, origin_host="mail1")
    print_job(api, "web1", pages=1, copies=2, origin_host="web-upload")
    print_job(api, "web2", owner="bob", pages=4, origin_host="web-upload")
    rows = {r["key"]: (r["jobs"], r["impressions"]) for r in api.get("/reports/pages?by=source").json["rows"]}
    assert rows == {"mail1": (1, 3), "print-server-1": (1, 2), "web-upload": (2, 6)}
    text = api.get("/reports/pages?by=source&format=csv").get_data(as_text=True)
    assert next(csv.reader(io.StringIO(text)))[0] == "key" and "web-upload" in text


def test_report_period_is_from_inclusive_to_exclusive(api: Api, clock: Clock) -> None:
    print_job(api, "early", pages=1)          # 07:00
    clock.advance(hours=1)
    print_job(api, "middle", pages=2)         # 08:00
    clock.advance(hours=1)
    print_job(api, "late", pages=4)           # 09:00
    answer = api.get("/reports/pages?by=user&from=2026-11-25T08:00:00Z&to=2026-11-25T09:00:00Z").json
    assert answer["from"] == "2026-11-25T08:00:00+00:00"
    assert answer["to"] == "2026-11-25T09:00:00+00:00"
    assert [(r["key"], r["pages"]) for r in answer["rows"]] == [("alice", 2)]
    # An offset in the query string, escaped or not (an unescaped "+" arrives as a space).
    since = api.get("/reports/pages?by=user&from=2026-11-25T09:00:00%2B01:00").json["rows"]
    assert since[0]["pages"] == 6  # 08:00Z onwards
    unescaped = api.get("/reports/pages?by=user&from=2026-11-25T09:00:00+01:00").json["rows"]
    assert unescaped == since
    assert api.get("/reports/pages?by=user&to=2026-11-25T06:00:00Z").json["rows"] == []


def test_report_csv(api: Api) -> None:
    print_job(api, "a1", pages=3, copies=2)
    print_job(api, "evil", owner="+cmd", pages=None)
    answer = api.get("/reports/pages?by=user&format=csv&from=2026-11-25T00:00:00Z")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="pages-by-user-from-20261125T000000Z.csv"')
    text = answer.get_data(as_text=True)
    assert text.splitlines()[0] == "key,jobs,pages,unknown_page_jobs,copies,impressions,sheets,duplex_jobs,color_jobs"
    rows = list(csv.DictReader(io.StringIO(text)))
    # A name that a spreadsheet would run as a formula is quoted out.
    assert [(r["key"], r["pages"], r["unknown_page_jobs"]) for r in rows] == [("'+cmd", "0", "1"),
                                                                              ("alice", "3", "0")]


def test_report_rejects_bad_parameters(api: Api) -> None:
    for query in ("", "by=owner", "by=user&from=yesterday", "by=user&to=2026-13-01",
                  "by=user&from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z", "by=user&format=xml"):
        answer = api.get(f"/reports/pages?{query}")
        assert answer.status_code == 400, query
        assert answer.json["error"] == "bad-field"
    assert api.client.get("/api/v1/reports/pages?by=user").status_code == 401  # no certificate


def test_finish_can_correct_pages_copies_duplex_and_colour(api: Api) -> None:
    api.post("/jobs", json=job_body("a", pages=None, options={"sides": "two-sided-long-edge"}))
    token = api.post("/jobs/a/claim", json={"user": "alice", "collector": "c1", "printer": "p1"}).json["token"]
    api.post("/jobs/a/finish", json={"token": token, "state": "printed", "pages": 7, "copies": 2, "duplex": False,
                                     "color": True})
    row = api.get("/reports/pages?by=user").json["rows"][0]
    assert (row["pages"], row["copies"], row["impressions"], row["sheets"], row["duplex_jobs"], row["color_jobs"]) == (
        7, 2, 14, 14, 0, 1)


def test_the_largest_page_count_a_document_may_claim_is_counted_not_a_500(api: Api) -> None:
    """A crafted `%%Pages: 999999999` × 3 copies overflowed PostgreSQL's INTEGER (found by schemathesis):
    the job could not be finished. Impressions and sheets are 64-bit now."""
    api.post("/jobs", json=job_body("big", pages=999_999_999, copies=3))
    token = api.post("/jobs/big/claim", json={"user": "alice", "collector": "c1", "printer": "p1"}).json["token"]
    answer = api.post("/jobs/big/finish", json={"token": token, "state": "printed"})
    assert answer.status_code == 200, answer.json
    row = api.get("/reports/pages?by=user").json["rows"][0]
    assert row["impressions"] == 2_999_999_997
