"""The JSON log lines: one object per line, the request id on each, nothing secret in any field."""

from __future__ import annotations

import json
import logging

import pytest

from pullprint import log


def _line(record_args: dict, *, exc: bool = False) -> dict:
    record = logging.makeLogRecord({"name": "collector.release", "levelno": logging.WARNING,
                                    "levelname": "WARNING", **record_args})
    if exc:
        try:
            raise RuntimeError("the printer said token=abc123 and pin: 4711")
        except RuntimeError:
            import sys

            record.exc_info = sys.exc_info()
    text = log.JsonFormatter().format(record)
    assert "\n" not in text  # one line, whatever the message holds
    return json.loads(text)


def test_a_line_is_one_json_object_with_the_current_request_id() -> None:
    with log.request_scope("cups-0123abcd"):
        entry = _line({"msg": "job %s held on %s", "args": ("j1", "c2"), "job": "j1"})
    assert entry["level"] == "WARNING" and entry["logger"] == "collector.release"
    assert entry["request_id"] == "cups-0123abcd"
    assert entry["msg"] == "job j1 held on c2" and entry["job"] == "j1"
    assert entry["ts"].startswith("20")
    assert "request_id" not in _line({"msg": "outside any request"})


def test_secrets_are_masked_in_the_message_the_extra_fields_and_the_traceback() -> None:
    entry = _line({"msg": 'login {"badge": "00423117", "pin": "4711"} password=hunter2',
                   "session_token": "tok-secret", "user": "alice", "detail": "Authorization: Bearer xyz"}, exc=True)
    text = json.dumps(entry)
    for secret in ("00423117", "4711", "hunter2", "tok-secret", "abc123", "xyz"):
        assert secret not in text, secret
    assert entry["user"] == "alice" and entry["session_token"] == "***"
    assert "RuntimeError" in entry["error"]


def test_a_message_cannot_forge_a_second_line_or_field() -> None:
    entry = _line({"msg": 'ok"}\n{"level": "INFO", "msg": "forged'})
    assert entry["level"] == "WARNING" and entry["msg"].startswith('ok"}')


@pytest.mark.parametrize("value", ["cups-0123abcd", "7c1e2f6a-9b7d-4c1e-8f55-0a1b2c3d4e5f", "heartbeat-1.2:3"])
def test_well_formed_ids_are_taken(value: str) -> None:
    assert log.well_formed_request_id(value) == value


@pytest.mark.parametrize("value", ["", None, "-x", "a b", 'x"}{"level":"ERROR', "x\ny", "é", "a" * 65, "a/b"])
def test_ids_that_could_spoil_a_log_line_are_refused(value: str | None) -> None:
    assert log.well_formed_request_id(value) is None


def test_work_handed_to_a_pool_keeps_the_request_id_and_the_next_hop_gets_it() -> None:
    with log.ContextExecutor(2) as pool, log.request_scope("release-42") as request_id:
        seen = pool.submit(log.current_request_id).result()
        headers = pool.submit(log.outgoing_headers).result()
    assert seen == request_id == "release-42"
    assert headers == {"X-Request-ID": "release-42"}
    assert log.outgoing_headers() == {}  # the scope ended with the block
    with log.request_scope() as fresh, log.request_scope() as other:
        assert fresh != other and log.well_formed_request_id(fresh) == fresh


def test_text_format_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULLPRINT_LOG_FORMAT", "text")
    formatter = log.formatter()
    assert isinstance(formatter, log.RedactingFormatter)
    with log.request_scope("abc"):
        line = formatter.format(logging.makeLogRecord({"name": "x", "msg": "pin=1234", "levelname": "INFO"}))
    assert line.endswith("x: pin=*** [abc]")
