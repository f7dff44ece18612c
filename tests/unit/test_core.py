"""Core pieces: config precedence, job state rules, credential hashing, page counting, the journal."""

import dataclasses
import json

import pytest

from collector.journal import Journal
from collector.pages import PageCounter
from pullprint import config, credentials
from pullprint.errors import PullprintError
from pullprint.log import redact
from pullprint.states import JobState, can_move


@dataclasses.dataclass
class Sample:
    name: str = "default"
    port: int = 1
    debug: bool = False
    secret: str = ""


def test_config_precedence(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"sample": {"name": "file", "port": 2}}))
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    env = {"PULLPRINT_CONFIG": str(cfg), "PULLPRINT_SAMPLE_PORT": "3", "PULLPRINT_SAMPLE_DEBUG": "yes",
           "PULLPRINT_SAMPLE_SECRET_FILE": str(secret)}
    loaded = config.load(Sample, "sample", environ=env, overrides={"name": "test"})
    assert loaded == Sample(name="test", port=3, debug=True, secret="s3cret")


def test_config_errors_are_clear():
    with pytest.raises(PullprintError, match="sample.port"):
        config.load(Sample, "sample", environ={"PULLPRINT_SAMPLE_PORT": "many"})
    with pytest.raises(PullprintError, match="unknown setting"):
        config.load(Sample, "sample", environ={}, overrides={"nope": 1})


def test_job_state_rules():
    assert can_move(JobState.HELD, JobState.RELEASING)
    assert can_move(JobState.RELEASING, JobState.HELD)  # an interrupted release goes back to held
    assert not can_move(JobState.PRINTED, JobState.RELEASING)  # printed is final: never printed twice
    assert not can_move(JobState.HELD, JobState.PRINTED)  # printing needs a claim first


def test_badge_hash_needs_the_pepper():
    assert credentials.badge_hash(b"pepper", "0012345") == credentials.badge_hash(b"pepper", " 0012345 ")
    assert credentials.badge_hash(b"pepper", "0012345") != credentials.badge_hash(b"other", "0012345")
    assert "0012345" not in credentials.badge_hash(b"pepper", "0012345")


def test_pin_hash_verifies_and_is_salted():
    stored = credentials.pin_hash("4711")
    assert credentials.verify_pin("4711", stored)
    assert not credentials.verify_pin("4712", stored)
    assert credentials.pin_hash("4711") != stored
    assert not credentials.verify_pin("4711", None)  # unknown user
    assert not credentials.verify_pin("4711", "garbage")


def test_bearer_check():
    assert credentials.bearer_matches("Bearer tok", "tok")
    assert not credentials.bearer_matches("Bearer tok", "other")
    assert not credentials.bearer_matches(None, "tok")
    assert not credentials.bearer_matches("tok", "tok")
    assert not credentials.bearer_matches("Bearer ", "")  # an unset secret matches nothing


def test_secrets_are_redacted_from_log_lines():
    line = redact('login {"badge": "0012345", "pin": "4711"} token=abc Authorization: Bearer xyz')
    for secret in ("0012345", "4711", "abc"):
        assert secret not in line


def feed(data: bytes, step: int = 7) -> int | None:
    counter = PageCounter()
    for i in range(0, len(data), step):
        counter.feed(data[i:i + step])
    return counter.pages()


def test_pages_of_pdf_postscript_and_pjl():
    pdf = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
           b"2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >> endobj\n"
           + b"".join(b"%d 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" % i for i in (3, 4, 5)))
    assert feed(pdf) == 3
    assert feed(b"%!PS-Adobe-3.0\n%%Pages: 12\n%%EndComments\n") == 12
    assert feed(b"%!PS-Adobe-3.0\n%%Page: 1 1\nshowpage\n%%Page: 2 2\nshowpage\n") == 2
    assert feed(b"\x1b%-12345X@PJL SET PAGES=4\r\n") == 4
    # PCL 5: form feeds and a page left marked at a reset; the form feeds and escapes inside raster
    # data (ESC *b#W) are data, not pages; PJL lines around it print nothing.
    raster = b"\x1b*r1A" + b"\x1b*b4W\x0c\x0c\x1b\x0c" * 3 + b"\x1b*rC"
    pcl = b"\x1bE\x1b&l26A" + (raster + b"\x0c") * 3 + b"\x1bE"
    assert feed(pcl) == feed(pcl, step=1) == 3
    wrapped = (b"\x1b%-12345X@PJL JOB\r\n@PJL ENTER LANGUAGE=PCL\r\n" + pcl
               + b"\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X")
    assert feed(wrapped) == feed(wrapped, step=1) == 3
    assert feed(b"\x1bEPage one\x0cPage two\x1bE") == 2
    # PCL XL (binary, its own page operators) is not read as PCL 5: unknown
    assert feed(b"\x1b%-12345X@PJL ENTER LANGUAGE=PCLXL\r\n) HP-PCL XL;2;0\r\n" + bytes(range(256))) is None
    assert feed(b"plain text, no page information") is None


def test_journal_replays_in_order_and_keeps_what_failed(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    for i in range(5):
        journal.append("register", {"id": str(i)})
    seen = []

    def deliver(kind, payload):
        if payload["id"] == "3":
            raise ConnectionError("analyst away")
        seen.append(payload["id"])

    with pytest.raises(ConnectionError):
        journal.replay(deliver)
    assert seen == ["0", "1", "2"]
    assert [e["payload"]["id"] for e in journal.entries()] == ["3", "4"]
    # A torn last line (crash mid-append) is ignored, the rest replays.
    with open(journal.path, "a") as fh:
        fh.write('{"kind": "regis')
    assert journal.replay(lambda kind, payload: seen.append(payload["id"])) == 2
    assert seen[-2:] == ["3", "4"]


def test_journal_defers_one_job_without_blocking_the_others(tmp_path):
    from collector.journal import Deferred

    journal = Journal(tmp_path / "j.jsonl")
    journal.append("offline-release", {"id": "A"})
    journal.append("register", {"id": "B"})
    journal.append("finish", {"id": "A"})  # must stay behind A's first entry
    journal.append("register", {"id": "C"})
    delivered = []

    def deliver(kind, payload):
        if payload["id"] == "A":
            raise Deferred()
        delivered.append(payload["id"])

    assert journal.replay(deliver) == 2
    assert delivered == ["B", "C"]
    assert [(e["kind"], e["payload"]["id"]) for e in journal.entries()] == [("offline-release", "A"), ("finish", "A")]
    assert journal.replay(lambda kind, payload: delivered.append(payload["id"])) == 2
    assert delivered[-2:] == ["A", "A"] and journal.entries() == []
