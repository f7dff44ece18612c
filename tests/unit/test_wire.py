"""Submission headers: what the backend sends is what the collector reads, and bad input is a clear 400."""

import dataclasses
import json
from pathlib import Path

import pytest

from pullprint.errors import BadRequest
from pullprint.wire import JobSubmission, decode_options, encode_options, print_options

DATA = Path(__file__).parent.parent / "data" / "submit_headers.json"


def test_round_trip_through_headers():
    sub = JobSubmission(owner="alice", title="Q3 report – final.pdf", copies=3,
                        options={"sides": "two-sided-long-edge", "media": "iso_a4_210x297mm"},
                        content_type="application/pdf", origin_host="ws12", cups_job_id="17",
                        idempotency_key="urn:uuid:cca9e1b2-0000-4000-8000-000000000001")
    assert JobSubmission.from_headers(sub.to_headers()) == sub


def test_a_jobs_record_is_the_submission_with_what_the_collector_added():
    sub = JobSubmission(owner="alice", title="Q3", copies=2, options={"sides": "two-sided-long-edge"},
                        idempotency_key="urn:uuid:cca9e1b2-0000-4000-8000-000000000002")
    job = dataclasses.replace(sub, id="ab" * 16, site="main", received_by="c1",
                              submitted_at="2026-01-05T09:00:00+00:00", expires_at="2026-01-05T17:00:00+00:00",
                              size=1234, sha256="0" * 64, pages=3, locations=("c1", "c2"))
    record = json.loads(json.dumps(job.to_json()))  # as the spool, a replica, the analyst and the journal see it
    assert record["owner"] == "alice" and record["locations"] == ["c1", "c2"] and record["pages"] == 3
    assert JobSubmission.from_json({**record, "provisional": True}) == job  # other keys are not the job's
    assert JobSubmission.from_headers(job.to_headers()) == sub


def test_cups_argv5_options_are_read():
    argv5 = "finishings=3 sides=two-sided-long-edge job-uuid=urn:uuid:cca9 time-at-creation=1795588617"
    options = decode_options(argv5)
    assert options["sides"] == "two-sided-long-edge"
    assert options["job-uuid"] == "urn:uuid:cca9"
    assert print_options(options) == {"finishings": "3", "sides": "two-sided-long-edge"}


def test_option_values_with_spaces_survive():
    options = {"job-name": "a b=c"}
    assert decode_options(encode_options(options)) == options


@pytest.mark.parametrize("case", json.loads(DATA.read_text())["bad"], ids=lambda c: c["why"])
def test_bad_headers_are_refused_with_a_code(case):
    with pytest.raises(BadRequest) as info:
        JobSubmission.from_headers(case["headers"])
    assert info.value.code == case["error"]
    assert info.value.status == 400


@pytest.mark.parametrize("case", json.loads(DATA.read_text())["good"], ids=lambda c: c["why"])
def test_good_headers_are_accepted(case):
    sub = JobSubmission.from_headers(case["headers"])
    for field, value in case["expect"].items():
        assert getattr(sub, field) == value
