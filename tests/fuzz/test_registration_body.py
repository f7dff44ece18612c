"""The analyst's registration body (analyst/jobs/service.py `registration`): a `POST /api/v1/jobs` JSON object.

The view hands it any JSON object (analyst/web.py `json_body` refuses the rest); a wrong field is a 400
(`missing-field` or `bad-field`, naming the field), never a 500. And the analyst must take what a
collector sends: every submission a collector accepts from the backend's headers registers, live or
replayed from the journal (a refusal there would drop an acknowledged job).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from analyst import validate as v
from analyst.jobs.service import registration
from pullprint.errors import BadRequest
from pullprint.wire import MAX_COPIES, MAX_TITLE, JobSubmission
from tests.fuzz.profile import fuzz
from tests.fuzz.test_submit_headers import CaseInsensitive, headers

FIELDS = ["id", "owner", "title", "size", "sha256", "pages", "copies", "options", "content_type", "origin_host",
          "cups_job_id", "idempotency_key", "site", "submitted_at", "expires_at", "received_by", "locations"]
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                        st.from_regex(r"\A[0-9]{1,4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?([+-][0-9]{2}:[0-9]{2}|Z)?\Z"))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=10)
body = st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=len(FIELDS)).flatmap(
    lambda b: st.just({"owner": "alice", **b}) if "owner" not in b else st.just(b)) | st.dictionaries(
    st.text(max_size=10), json_value, max_size=5)


@given(body)
@example({"owner": "alice", "submitted_at": "0001-01-01T00:00:00+01:00"})  # astimezone(UTC) raised OverflowError
@example({"owner": "alice", "expires_at": "9999-12-31T23:59:59-01:00"})
@example({"owner": "alice", "size": 2**64})  # no SQL integer column holds it
@example({"owner": "alice", "title": "\ud800"})  # JSON "\ud800": no database stores a lone surrogate
@example({"owner": "alice\n"})  # `$` matched before a trailing newline
@fuzz()
def test_a_body_registers_or_is_refused_with_its_field(raw):
    try:
        job = registration(raw)
    except BadRequest as exc:
        assert exc.code in ("missing-field", "bad-field") and exc.status == 400 and exc.message
        assert exc.details.get("field") in FIELDS
        return
    assert v.USER_PATTERN.fullmatch(job.owner) and len(job.title) <= MAX_TITLE
    assert 1 <= job.copies <= MAX_COPIES and 0 <= job.size < 2**63 and (job.pages is None or 0 <= job.pages < 2**31)
    assert all(v.ID_PATTERN.fullmatch(location) for location in job.locations)
    for name in ("submitted_at", "expires_at"):
        v.timestamp({name: getattr(job, name)}, name)  # the view reads them again: no error there
    # Its JSON form (how the answer, the journal and a replica carry it) registers as the same job.
    assert registration(json.loads(json.dumps(job.to_json()))) == job


def collector_adds(data: st.DataObject, submission: JobSubmission) -> JobSubmission:
    """What collector/intake.py adds to a submission before it registers it (or journals it)."""
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    return replace(submission, id=uuid.uuid4().hex, site="main", received_by="c1", submitted_at=now.isoformat(),
                   expires_at=(now + timedelta(hours=8)).isoformat(), size=data.draw(st.integers(0, 2**40)),
                   sha256="ab" * 32, pages=data.draw(st.none() | st.integers(1, 10**9 - 1)),
                   locations=("c1", "c2"))


@given(st.data(), headers)
@example(None, {"X-Pullprint-Owner": "alice", "Content-Type": "a/" + "b" * 200})  # the analyst took 127 at most
@example(None, {"X-Pullprint-Owner": "alice", "X-Pullprint-Options": " ".join(f"o{i}=1" for i in range(65))})
@example(None, {"X-Pullprint-Owner": "alice", "X-Pullprint-Options": "a=" + "x" * 1100})
@fuzz()
def test_what_a_collector_accepts_the_analyst_registers(data, raw):
    try:
        submission = JobSubmission.from_headers(CaseInsensitive(raw))
    except BadRequest:
        return
    job = collector_adds(data, submission) if data is not None else replace(submission, id=uuid.uuid4().hex)
    sent = json.loads(json.dumps(job.to_json()))
    assert registration(sent) == job
