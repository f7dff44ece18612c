"""One request id follows a piece of work across every hop: CUPS's backend or HAProxy gives it, the
collectors and the analyst write it on their JSON log lines and hand it on to each node they call."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from localcluster.cluster import LocalCluster
from tests.e2e.conftest import login, release, submit, user, wait_for


def _json_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))  # every line a service writes is JSON: a broken one fails here
    return lines


def _lines_with(cluster: LocalCluster, request_id: str) -> dict[str, list[dict]]:
    """Each service's log lines that carry `request_id`, by writer (c1, c2, c3, analyst)."""
    found = {name: [e for e in _json_lines(c.spool_dir.parent / "collector.log") if e.get("request_id") == request_id]
             for name, c in cluster.collectors.items()}
    found["analyst"] = [e for e in _json_lines(cluster.state_dir / "analyst.log") if e.get("request_id") == request_id]
    return {name: lines for name, lines in found.items() if lines}


def _haproxy_lines(cluster: LocalCluster, request_id: str) -> list[str]:
    return [line for line in (cluster.state_dir / "lb" / "haproxy.log").read_text(errors="replace").splitlines()
            if line.endswith(f" {request_id}")]


def test_a_submit_through_the_load_balancer_is_logged_under_one_id_by_every_node_it_touched(cluster) -> None:
    answer = submit(cluster, "alice", os.urandom(30_000), title="request-id")
    assert answer.status_code == 201, answer.text
    request_id = answer.headers["X-Request-ID"]  # given by HAProxy: the client sent none
    holder, replica = answer.json()["locations"]

    def logged(found: dict[str, list[dict]]) -> bool:
        # A node writes its access line once it has answered, so the 201 can come before the lines do.
        return (any(e["logger"] == "access" for e in found.get(holder, []))
                and any(e["logger"] == "access" and e["path"].startswith("/internal/")
                        for e in found.get(replica, []))  # the copy
                and any(e["logger"] == "access" and e["path"] == "/api/v1/jobs" and e["method"] == "POST"
                        for e in found.get("analyst", [])))  # the registration

    seen = wait_for(lambda: (found := _lines_with(cluster, request_id)) and logged(found) and found, 10,
                    "the submit's access lines at the holder, its peer and the analyst")
    submit_line = next(e for e in seen[holder] if e["logger"] == "access")
    assert (submit_line["method"], submit_line["path"], submit_line["status"]) == ("POST", "/api/v1/jobs", "201")
    assert submit_line["node"] == holder and submit_line["service"] == "collector"
    hap = wait_for(lambda: _haproxy_lines(cluster, request_id), 10, "HAProxy's line")
    assert len(hap) == 1 and '"POST /api/v1/jobs HTTP/1.1"' in hap[0]


def test_a_release_from_a_terminal_away_from_the_job_is_followed_to_its_holder(cluster) -> None:
    bob = user(cluster, "bob")
    printer = cluster.printers[1]
    submitted = submit(cluster, "bob", os.urandom(20_000), url=cluster.collectors["c1"].url)
    holders = submitted.json()["locations"]
    terminal = next(c for c in cluster.collectors.values() if c.id not in holders)
    session = login(cluster, printer["id"], url=terminal.url, badge=bob["badge"]).json()["session"]
    answer = release(cluster, session, {"jobs": [submitted.json()["id"]]}, url=terminal.url)
    assert answer.json()["results"][0]["status"] == "printed", answer.text
    request_id = answer.headers["X-Request-ID"]  # made by the terminal's collector: it came straight, not via HAProxy

    def at_a_holder(found: dict[str, list[dict]]) -> bool:  # its access line comes once it has answered
        return any(e["logger"] == "access" and e["path"].startswith("/internal/")
                   for h in holders for e in found.get(h, []))

    seen = wait_for(lambda: (found := _lines_with(cluster, request_id)) and at_a_holder(found)
                    and "analyst" in found and found, 10, "the release's lines at the holder and the analyst")
    assert terminal.id in seen  # where the release was asked for


def test_a_client_id_is_kept_and_a_hostile_one_replaced_everywhere(cluster) -> None:
    kept = submit(cluster, "alice", b"%!PS\nshowpage\n", headers={"X-Request-ID": "ws42-job-7"})
    assert kept.status_code == 201 and kept.headers["X-Request-ID"] == "ws42-job-7"
    wait_for(lambda: len(_lines_with(cluster, "ws42-job-7")) >= 3, 10, "the client's id in three services' logs")

    hostile = 'x" forged {"level": "ERROR"}'
    replaced = submit(cluster, "alice", b"%!PS\nshowpage\n", headers={"X-Request-ID": hostile})
    assert replaced.status_code == 201 and replaced.headers["X-Request-ID"] != hostile
    assert re.fullmatch(r"[0-9a-f-]{36}", replaced.headers["X-Request-ID"])  # HAProxy's own
    wait_for(lambda: _haproxy_lines(cluster, replaced.headers["X-Request-ID"]), 10, "HAProxy's line")
    for path in [cluster.state_dir / "analyst.log", cluster.state_dir / "lb" / "haproxy.log",
                 *(c.spool_dir.parent / "collector.log" for c in cluster.collectors.values())]:
        assert "forged" not in path.read_text(errors="replace"), path


def test_an_lp_job_is_found_in_every_log_by_the_id_the_backend_wrote_to_cups(cluster, tmp_path) -> None:
    document = tmp_path / "quarterly-report.ps"
    document.write_bytes(b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n" + os.urandom(10_000).hex().encode()
                         + b"\nshowpage\n")
    env = {**os.environ, "CUPS_SERVER": cluster.cupsd.server}
    out = subprocess.run(["lp", "-U", "alice", "-d", "SecurePrint", str(document)], env=env, check=True,
                         capture_output=True, text=True).stdout
    cups_job = re.search(r"SecurePrint-(\d+)", out).group(1)

    def backend_line() -> str | None:
        for line in cluster.cupsd.error_log.read_text(errors="replace").splitlines():
            if f"[Job {cups_job}] held as " in line and "request cups-" in line:
                return line
        return None

    line = wait_for(backend_line, 30, "the backend's line in CUPS's error_log")
    request_id = re.search(r"request (cups-[0-9a-f]{16})", line).group(1)
    seen = wait_for(lambda: (found := _lines_with(cluster, request_id)) and "analyst" in found and len(found) >= 3
                    and found, 30, "the job's lines at two collectors and the analyst")
    assert any(e["logger"] == "access" and e["path"] == "/api/v1/jobs" and e["status"] == "201"
               for lines in seen.values() for e in lines)
    assert wait_for(lambda: _haproxy_lines(cluster, request_id), 10, "HAProxy's line")
