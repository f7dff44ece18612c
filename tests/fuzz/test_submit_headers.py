"""The submit headers (collector intake): how X-Pullprint-* headers become a `pullprint.wire.JobSubmission`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from pullprint.errors import BadRequest
from pullprint.wire import (
    _IDEM,
    _OPTION_NAME,
    _OWNER,
    H_CUPS_JOB,
    H_IDEMPOTENCY,
    H_OPTIONS,
    H_ORIGIN,
    H_OWNER,
    H_TITLE,
    MAX_COPIES,
    MAX_TITLE,
    JobSubmission,
    decode_options,
    encode_options,
)
from tests.fuzz.profile import fuzz

CODES = {"missing-owner", "bad-owner", "bad-copies", "bad-idempotency-key", "bad-content-type", "bad-options"}
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "submit_headers.json").read_text())

# What a WSGI server can hand over: header values are latin-1 text without CR, LF or NUL.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
# Near misses of the valid forms find the edges faster than uniform text.
owner_like = st.one_of(st.from_regex(_OWNER, fullmatch=True), header_text,
                       st.from_regex(r"\A\s*[A-Za-z0-9._@\-+$/;]{0,70}\s*\Z"))
copies_like = st.one_of(st.integers(-5, MAX_COPIES + 5).map(str), header_text,
                        st.from_regex(r"\A\s*[+-]?[0-9_]{1,6}\s*\Z"))
percent = st.from_regex(r"\A(?:%[0-9A-Fa-f]{2}|%|[ -~])*\Z")
options_like = st.one_of(
    header_text,
    st.lists(st.tuples(st.from_regex(r"\A[A-Za-z0-9\-_.]{0,66}\Z"), percent), max_size=6).map(
        lambda pairs: " ".join(f"{k}={v}" for k, v in pairs)))
headers = st.fixed_dictionaries({}, optional={
    H_OWNER: owner_like, H_TITLE: st.one_of(header_text, percent), "X-Pullprint-Copies": copies_like,
    H_OPTIONS: options_like, H_ORIGIN: header_text, H_CUPS_JOB: header_text,
    H_IDEMPOTENCY: st.one_of(st.from_regex(_IDEM, fullmatch=True), header_text),
    "Content-Type": st.one_of(st.sampled_from(["application/pdf", "application/postscript; x=1", ""]), header_text)})


class CaseInsensitive(dict):
    """Request headers are looked up whatever their case; the parser must only use `get`."""

    def get(self, key, default=None):
        for name, value in self.items():
            if name.lower() == key.lower():
                return value
        return default


@given(headers)
@example({H_OWNER: "alice", "X-Pullprint-Copies": "1_0"})  # int() takes underscores: 10 copies, in range
@example({H_OWNER: "alice", "X-Pullprint-Copies": "9" * 5000})  # past int()'s digit limit: still a BadRequest
@example({H_OWNER: "alice", H_TITLE: "a%00b", H_OPTIONS: "x=%00"})  # a NUL went to the analyst's SQL columns
@fuzz()
def test_headers_parse_or_are_refused_with_a_code(raw):
    try:
        job = JobSubmission.from_headers(CaseInsensitive(raw))
    except BadRequest as exc:
        assert exc.code in CODES and exc.message and exc.status == 400
        return
    assert _OWNER.match(job.owner)
    assert 1 <= job.copies <= MAX_COPIES
    assert job.title and len(job.title) <= MAX_TITLE
    assert job.idempotency_key == "" or _IDEM.match(job.idempotency_key)
    assert job.content_type and ";" not in job.content_type and job.content_type == job.content_type.strip()
    assert len(job.origin_host) <= 255 and len(job.cups_job_id) <= 32
    assert all(_OPTION_NAME.match(name) for name in job.options)
    # No control characters in what is stored and shown (PostgreSQL text and JSON columns refuse NUL).
    texts = [job.title, job.content_type, job.origin_host, job.cups_job_id, *job.options.values()]
    assert not any(CONTROL.search(t) for t in texts)
    # What the collector took in, it can send on (a replica's header, a retry) and read back the same.
    assert JobSubmission.from_headers(CaseInsensitive(job.to_headers())) == job


for _case in GOLDEN["good"] + GOLDEN["bad"]:  # the golden files are examples of every run too
    test_headers_parse_or_are_refused_with_a_code = example(_case["headers"])(
        test_headers_parse_or_are_refused_with_a_code)


submission = st.builds(
    JobSubmission,
    owner=st.from_regex(_OWNER, fullmatch=True),
    title=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=MAX_TITLE),
    copies=st.integers(1, MAX_COPIES),
    options=st.dictionaries(st.from_regex(_OPTION_NAME, fullmatch=True),
                            st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40), max_size=5),
    content_type=st.from_regex(r"\A[a-z]{1,12}/[a-z0-9.+\-]{1,20}\Z"),
    origin_host=st.from_regex(r"\A[A-Za-z0-9.\-:]{0,60}\Z"),
    cups_job_id=st.from_regex(r"\A[0-9]{0,10}\Z"),
    idempotency_key=st.one_of(st.just(""), st.from_regex(_IDEM, fullmatch=True)),
)


@given(submission)
@fuzz()
def test_headers_round_trip(job):
    """to_headers is the encoder of from_headers: every valid submission survives the trip unchanged."""
    sent = job.to_headers()
    assert all(v.isprintable() and v.isascii() for v in sent.values() if v), sent
    assert JobSubmission.from_headers(CaseInsensitive(sent)) == job


@given(st.dictionaries(st.from_regex(_OPTION_NAME, fullmatch=True),
                       st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60), max_size=8))
@fuzz()
def test_options_round_trip(options):
    assert decode_options(encode_options(options)) == options


@given(st.text(max_size=200))
@fuzz()
def test_options_decoder_never_raises_and_keeps_only_cups_names(text):
    decoded = decode_options(text)
    assert all(_OPTION_NAME.match(name) for name in decoded)
    assert decode_options(encode_options(decoded)) == decoded
