"""Bounded input at the collector (issue 9): JSON bodies capped, release lists capped, ids checked where
they enter and quoted where they leave, so a crafted job id can never become another URL."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from flask import request

from collector.analyst_client import AnalystClient
from collector.app import create_app
from collector.config import CollectorConfig
from collector.membership import Member
from collector.node import build_node
from collector.peers import PeerClient
from collector.release import release_jobs
from collector.replay import deliver
from collector.terminal import parse_release
from collector.web import json_body
from pullprint.errors import BadRequest, PullprintError, TooLarge
from pullprint.ids import valid_job_id

EVIL = "../collectors/evil/heartbeat#"
HEARTBEAT_FOR_EVIL = "/api/v1/collectors/evil/heartbeat"


class Recorder:
    """A real HTTP server standing in for the analyst or a peer: records every request line's path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                recorder.paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps({"error": "not-found", "message": "no such job"}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def test_a_crafted_job_id_stays_one_path_segment_at_the_analyst(recorder: Recorder) -> None:
    # The probe: a job id that climbs out of /jobs/ and names the heartbeat of a collector "evil".
    client = AnalystClient(recorder.url, None, 2.0)
    calls = [lambda: client.claim(EVIL, collector="c1", printer="p1", user="alice", lease_seconds=60),
             lambda: client.finish(EVIL, token=1, state="printed"),
             lambda: client.renew(EVIL, token=1, lease_seconds=5),
             lambda: client.job(EVIL), lambda: client.delete_job(EVIL), lambda: client.add_location(EVIL, "c1"),
             lambda: client.remove_location(EVIL, "c1")]
    for call in calls:
        try:
            call()
        except PullprintError:
            pass  # the stand-in answers 404
    assert len(recorder.paths) == len(calls)
    for path in recorder.paths:
        assert path.startswith("/api/v1/jobs/..%2Fcollectors%2Fevil%2Fheartbeat%23"), path
        assert "heartbeat/" not in path and "maintenance" not in path
    # The analyst's sweep is not reachable through a job id either.
    recorder.paths.clear()
    with pytest.raises(PullprintError):
        client.claim("../maintenance/expire#", collector="c1", printer="p1", user="alice", lease_seconds=60)
    assert recorder.paths == ["/api/v1/jobs/..%2Fmaintenance%2Fexpire%23/claim"]


def test_a_crafted_job_id_stays_one_path_segment_at_a_peer(recorder: Recorder) -> None:
    peers, peer = PeerClient(None, 2.0), Member("c2", recorder.url)
    calls = [lambda: peers.commit(peer, EVIL), lambda: peers.fetch(peer, EVIL),
             lambda: peers.print_direct(peer, EVIL, {}, 2.0), lambda: peers.delete(peer, EVIL + "x")]
    for call in calls:
        try:
            call()
        except PullprintError:
            pass
    assert recorder.paths and all(p.startswith(("/internal/v1/jobs/..%2F", "/internal/v1/replicas/..%2F"))
                                  for p in recorder.paths), recorder.paths


@pytest.mark.parametrize("value", ["0" * 31, "0" * 33, "A" * 32, "0" * 31 + "\n", "0" * 32 + "\n", EVIL, "", None, 7])
def test_only_ids_a_collector_makes_are_job_ids(value: object) -> None:
    assert not valid_job_id(value)
    assert valid_job_id("0123456789abcdef" * 2)


@pytest.fixture
def collector(tmp_path, redis_settings, recorder: Recorder):
    config = dataclasses.replace(CollectorConfig(), id="c1", spool_dir=str(tmp_path), installation_key="11" * 32,
                                 session_key="k", insecure_plain_http=True, analyst_url=recorder.url,
                                 **redis_settings)
    node = build_node(config)
    app = create_app(config, node=node)
    yield app, node
    node.close()


def test_an_oversized_json_body_is_a_413_and_the_service_stays_up(collector) -> None:
    app, _ = collector
    big = json.dumps({"printer": "p1", "badge": "x" * (65 * 1024)}).encode()
    # With its length up front, and without (chunked: only the limit and one byte more are read).
    for chunked in (False, True):
        with app.test_request_context("/api/v1/sessions", method="POST", data=big, content_type="application/json",
                                      headers={"Transfer-Encoding": "chunked"} if chunked else {},
                                      environ_overrides={"wsgi.input_terminated": True}):
            assert (request.content_length is None) is chunked
            with pytest.raises(TooLarge) as caught:
                json_body()
            assert caught.value.code == "body-too-large" and caught.value.details["limit"] == 64 * 1024
            assert caught.value.status == 413
    answer = app.test_client().post("/api/v1/sessions", data=big, content_type="application/json")
    assert answer.status_code in (401, 413) and answer.is_json  # refused, whichever check comes first
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 60_000, b""])
def test_a_malformed_json_body_is_a_400_with_a_json_error(collector, body: bytes) -> None:
    app, _ = collector
    with app.test_request_context("/api/v1/sessions", method="POST", data=body, content_type="application/json"):
        with pytest.raises(BadRequest) as caught:
            json_body()
        assert caught.value.code == "bad-json" and caught.value.status == 400


def test_a_release_names_at_most_max_release_jobs(collector) -> None:
    _, node = collector
    ids = [f"{i:032x}" for i in range(node.config.max_release_jobs + 1)]
    session = SimpleNamespace(user="alice", printer="p1", token="t")
    with pytest.raises(BadRequest) as caught:
        release_jobs(node, session, parse_release({"jobs": ids}), None)
    assert caught.value.code == "too-many-jobs" and caught.value.details["limit"] == 500


def test_a_journal_entry_with_a_crafted_id_never_reaches_the_analyst(collector, recorder: Recorder) -> None:
    _, node = collector
    deliver(node, "finish", {"id": EVIL, "token": 1, "state": "printed"})
    deliver(node, "location", {"id": "../maintenance/expire#", "collector": "c1"})
    assert recorder.paths == []


def test_replica_and_spool_paths_refuse_a_crafted_id(collector) -> None:
    app, _ = collector
    client = app.test_client()
    auth = {"Authorization": "Bearer token"}
    for method, path in (("GET", "/internal/v1/jobs/..%2F..%2Fjournal/spool"),
                         ("PUT", f"/internal/v1/replicas/{'0' * 32}%0A"),
                         ("DELETE", "/internal/v1/jobs/ABC")):
        answer = client.open(path, method=method, headers=auth)
        assert answer.status_code in (400, 404), (path, answer.status_code)
        assert answer.is_json


def test_a_replica_is_bounded_like_a_submission(tmp_path) -> None:
    import io

    from collector.spool import SpoolStore, new_job_id
    from pullprint.errors import TooLarge

    key = bytes(range(32))
    source, peer = SpoolStore(tmp_path / "a", key), SpoolStore(tmp_path / "b", key)
    job_id = new_job_id()
    source.receive(job_id, [b"x" * 300_000], {"owner": "alice"}, limit=10**6)
    meta = source.meta(job_id)
    sealed = (tmp_path / "a" / "jobs" / f"{job_id}.spool").read_bytes()
    # A copy of a document as large as the limit is taken; one longer than that document sealed is not,
    # and is refused as it streams: an endless body never fills the disk.
    peer.store_replica(job_id, io.BytesIO(sealed), meta, limit=300_000)
    assert peer.has(job_id)

    class Endless:
        def read(self, n: int = -1) -> bytes:
            return b"\0" * 65536

    other = new_job_id()
    with pytest.raises(TooLarge):
        peer.store_replica(other, Endless(), meta, limit=300_000)
    assert not peer.has(other) and list(peer.tmp.iterdir()) == []
