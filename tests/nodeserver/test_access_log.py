"""Session tokens never reach gunicorn's access log (issue 9), checked against a real gunicorn, and both
services' gunicorn command lines use the redacting logger."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

from nodeserver.access_log import REDACTED, redact
from nodeserver.command import gunicorn_command
from pullprint import daemons

TOKEN = "eyJ1IjoiYWxpY2UiLCJwIjoicDEifQ.c2lnbmF0dXJlLW9mLXRoZS1zZXNzaW9u"
LOGGER = "nodeserver.access_log.RedactingLogger"


def test_a_real_gunicorn_serves_the_token_but_never_logs_it(tmp_path: Path) -> None:
    port = daemons.free_port()
    access_log = tmp_path / "access.log"
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--access-logfile", str(access_log), "--logger-class", LOGGER,
            "--access-logformat", '%(h)s "%(r)s" %(s)s path=%(U)s referer="%(f)s" auth="%({authorization}i)s"',
            "--chdir", str(Path(__file__).resolve().parents[2]), "tests.nodeserver.access_log_app:app"]
    server = daemons.start("gunicorn", argv, log_path=tmp_path / "gunicorn.log",
                           ready=lambda: daemons.port_open("127.0.0.1", port))
    base = f"http://127.0.0.1:{port}"
    try:
        answers = [
            requests.get(f"{base}/api/v1/sessions/{TOKEN}", timeout=5),
            requests.post(f"{base}/api/v1/sessions/{TOKEN}/release", json={"all": True}, timeout=5,
                          headers={"Referer": f"{base}/api/v1/sessions/{TOKEN}", "Authorization": "Bearer x"}),
            requests.delete(f"{base}/api/v1//sessions/{TOKEN}?x=1", timeout=5),
            requests.get(f"{base}/healthz", timeout=5),
        ]
        # The requests worked: the app saw the token (it is the API's path, unchanged).
        assert [a.status_code for a in answers] == [200, 200, 200, 200]
        assert answers[1].json()["path"] == f"/api/v1/sessions/{TOKEN}/release"
        daemons.wait_until(lambda: access_log.exists() and "/healthz" in access_log.read_text(), 10,
                           "the access log line of /healthz")
    finally:
        server.stop()
    text = access_log.read_text()
    assert TOKEN not in text and "Bearer" not in text
    assert f'"GET /api/v1/sessions/{REDACTED} HTTP/1.1" 200 path=/api/v1/sessions/{REDACTED}' in text
    assert f'"POST /api/v1/sessions/{REDACTED}/release HTTP/1.1" 200' in text
    assert f'referer="{base}/api/v1/sessions/{REDACTED}"' in text
    assert f'auth="{REDACTED}"' in text
    assert len(text.splitlines()) == 4  # one line per request, nothing swallowed


def test_both_services_run_gunicorn_with_the_redacting_logger() -> None:
    from analyst.cli import gunicorn_argv
    from analyst.config import AnalystConfig

    argv, _ = gunicorn_command("collector.app:create_app()", bind="127.0.0.1:1", workers=1, threads=1, tls=None)
    assert argv[argv.index("--logger-class") + 1] == LOGGER
    assert "--access-logfile" in argv
    analyst = gunicorn_argv(AnalystConfig(insecure_plain_http=True))  # type: ignore[call-arg]
    assert analyst[analyst.index("--logger-class") + 1] == LOGGER


def test_redact_leaves_other_paths_alone() -> None:
    assert redact("GET /api/v1/sessions HTTP/1.1") == "GET /api/v1/sessions HTTP/1.1"  # the login itself
    assert redact("GET /api/v1/jobs/abc HTTP/1.1") == "GET /api/v1/jobs/abc HTTP/1.1"
    assert redact("/API/V1/SESSIONS/tok") == f"/API/V1/SESSIONS/{REDACTED}"


def test_a_real_gunicorn_writes_json_lines_with_the_request_id_it_answers(tmp_path: Path) -> None:
    port = daemons.free_port()
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--access-logfile", "-", "--logger-class", LOGGER,
            "--chdir", str(Path(__file__).resolve().parents[2]), "tests.nodeserver.request_id_app:app"]
    log_path = tmp_path / "service.log"
    server = daemons.start("gunicorn", argv, log_path=log_path, ready=lambda: daemons.port_open("127.0.0.1", port))
    url = f"http://127.0.0.1:{port}/api/v1/sessions/{TOKEN}"
    try:
        made = requests.get(url, timeout=5)
        kept = requests.get(url, headers={"X-Request-ID": "cups-0011aabb"}, timeout=5)
        hostile = requests.get(url, headers={"X-Request-ID": 'x"} {"level": "ERROR'}, timeout=5)
        daemons.wait_until(lambda: log_path.read_text().count('"logger": "access"') >= 3, 10, "three access lines")
    finally:
        server.stop()
    # The id is answered, and is the one the app worked under.
    assert made.headers["X-Request-ID"] == made.json()["request_id"] != ""
    assert kept.headers["X-Request-ID"] == kept.json()["request_id"] == "cups-0011aabb"
    assert hostile.json()["request_id"] not in ("", 'x"} {"level": "ERROR') and made.json() != hostile.json()
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [e for e in lines if e["logger"] == "access"]
    app_lines = [e for e in lines if e["logger"] == "testapp"]
    ids = [made.json()["request_id"], "cups-0011aabb", hostile.json()["request_id"]]
    assert [e["request_id"] for e in access] == ids and [e["request_id"] for e in app_lines] == ids
    assert all(e["path"] == f"/api/v1/sessions/{REDACTED}" and e["status"] == "200" and e["method"] == "GET"
               and e["service"] == "testapp" and e["duration_ms"] >= 0 for e in access)
    text = log_path.read_text()
    assert TOKEN not in text and '"level": "ERROR' not in text.replace('\\"', "")
    # gunicorn's own messages are JSON lines too.
    assert any(e["logger"] == "gunicorn.error" and "Booting worker" in e["msg"] for e in lines)
