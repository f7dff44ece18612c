"""Against the real Redis (TLS only, ACL users): who may talk to it, and that nothing planted in it is acted on.

Each test plants what a Redis writer could (issue 9) and checks that the collector ignores it: a
member record with an attacker's URL, the job id of a CUPS job-uuid (`submitted:*`), a release's
stored answer, the site's analyst-down flag, a `gone` mark and an offline claim, a health reading;
and that a direct print for a printer URI of the caller's choosing, or under a claim the analyst
does not confirm, is refused with the job still held and its copy intact.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
import redis as redis_lib
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from collector import intake, site_claims
from collector.analyst_client import AnalystUnavailable
from collector.app import create_app
from collector.config import CollectorConfig
from collector.health.cache import check_printer, store_health
from collector.health.model import PrinterHealth
from collector.node import build_node
from collector.release import release_jobs
from collector.sessions import Session
from collector.terminal import ReleaseRequest
from pullprint import keys
from pullprint.errors import NotFound
from pullprint.states import JobState

# --- who may talk to Redis -------------------------------------------------------------------------


def test_plain_tcp_is_not_served(redis_server) -> None:
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as raw:
        raw.sendall(b"*3\r\n$3\r\nSET\r\n$5\r\npp:xx\r\n$1\r\n1\r\n")
        try:
            answer = raw.recv(100)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"+OK")  # a TLS server never parses a plain command


def test_a_client_without_a_cluster_certificate_gets_no_session(redis_server) -> None:
    context = ssl.create_default_context(cafile=str(redis_server.ca_file))  # trusts the server, shows nothing
    with (socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as raw,
          pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)),
          context.wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        # TLS 1.3 reports the refused certificate only at the first read; it is never an answer.
        tls.sendall(b"*3\r\n$3\r\nSET\r\n$5\r\npp:xx\r\n$1\r\n1\r\n")
        assert not tls.recv(100).startswith(b"+OK")
        raise ConnectionResetError  # answered, but not +OK: refused as well


def test_an_unauthenticated_set_is_refused(redis_server, redis) -> None:
    tls = redis_server.client_tls("collector", "c1")
    anonymous = redis_server.client("collector-c1", tls)
    anonymous.connection_pool.connection_kwargs.update(username=None, password=None)
    with pytest.raises(redis_lib.exceptions.AuthenticationError):  # NOAUTH: the default user is off
        anonymous.set("pp:planted", "1")
    wrong = redis_server.client("collector-c1", tls)
    wrong.connection_pool.connection_kwargs.update(password="not-the-password")
    with pytest.raises(redis_lib.exceptions.AuthenticationError):
        wrong.set("pp:planted", "1")
    assert redis.get("pp:planted") is None


def test_the_collector_user_reaches_its_keys_and_nothing_dangerous(redis_server, redis) -> None:
    client = redis_server.client("collector-c1", redis_server.client_tls("collector", "c1"), decode_responses=True)
    assert client.set("pp:ok", "1") and client.get("pp:ok") == "1"
    for command in (("SET", "other:key", "1"), ("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "SET", "dir", "/tmp"),
                    ("ACL", "LIST"), ("CLIENT", "LIST"), ("SCRIPT", "FLUSH"), ("SHUTDOWN",)):
        with pytest.raises(redis_lib.exceptions.NoPermissionError):
            client.execute_command(*command)
    assert redis.get("pp:ok") == "1"


def test_each_collector_has_its_own_user_and_revoking_one_leaves_the_others(tmp_path) -> None:
    from localcluster.redis_server import start_redis

    server = start_redis(tmp_path / "redis", tmp_path / "ca", collectors=["c1", "c2"])
    try:
        c1 = server.client("collector-c1", server.client_tls("collector", "c1"), socket_timeout=5)
        c2 = server.client("collector-c2", server.client_tls("collector", "c2"), socket_timeout=5)
        assert c1.set("pp:one", "1") and c2.get("pp:one") == b"1"
        assert server.password("collector-c1") != server.password("collector-c2")
        # c1's password is c1's only: it does not open c2's user.
        borrowed = server.client("collector-c2", server.client_tls("collector", "c1"), socket_timeout=5)
        borrowed.connection_pool.connection_kwargs.update(password=server.password("collector-c1"))
        with pytest.raises(redis_lib.exceptions.AuthenticationError):
            borrowed.ping()
        c2_password = server.password("collector-c2")
        server.remove_collector("c2")
        # c2's open connection is closed by Redis at once, and its password opens nothing any more.
        with pytest.raises(redis_lib.exceptions.ConnectionError):
            c2.get("pp:one")
        again = server.client("admin", socket_timeout=5)
        again.connection_pool.connection_kwargs.update(username="collector-c2", password=c2_password)
        with pytest.raises(redis_lib.exceptions.AuthenticationError):
            again.ping()
        assert c1.get("pp:one") == b"1"  # the other collector is untouched
        # The ACL file keeps it so: after a restart c2 is still out, c1 and a collector added later are in.
        server.add_collector("c4")
        port = server.port
        server.stop()
        server = start_redis(tmp_path / "redis", tmp_path / "ca", port=port, collectors=["c1", "c2"])
        assert server.client("collector-c1", server.client_tls("collector", "c1"), socket_timeout=5).ping()
        assert server.client("collector-c4", server.client_tls("collector", "c4"), socket_timeout=5).ping()
        again = server.client("admin", socket_timeout=5)
        again.connection_pool.connection_kwargs.update(username="collector-c2", password=c2_password)
        with pytest.raises(redis_lib.exceptions.AuthenticationError):
            again.ping()
    finally:
        server.stop()


def test_the_collector_refuses_a_server_that_is_not_the_clusters_redis(redis_server, tmp_path) -> None:
    from collector.redis_client import connect
    from pullprint.pki import Authority

    # A TLS server with a valid cluster certificate of another role (a collector's) stands in for Redis.
    cert, key = Authority(redis_server.authority).issue("collector", "evil", ["127.0.0.1"], out_dir=tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(redis_server.ca_file))
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(100)

    threading.Thread(target=serve, daemon=True).start()
    client = connect(f"rediss://127.0.0.1:{port}/0", username="collector", password="x",
                     tls=redis_server.client_tls("collector", "c1"), socket_timeout=2)
    with pytest.raises(redis_lib.exceptions.ConnectionError, match="not the cluster's Redis"):
        client.ping()
    listener.close()


# --- a collector on that Redis, with a stand-in analyst ---------------------------------------------------


class Analyst:
    """What the analyst would answer, kept in memory (fakes only inside these unit tests)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.printers: dict[str, dict] = {}
        self.reachable = True
        self.finished: list[tuple[str, str]] = []

    def _up(self) -> None:
        if not self.reachable:
            error = AnalystUnavailable("analyst-unreachable", "down")
            error.maybe_acted = False
            raise error

    def register_job(self, job, *, offline_at=None):
        self._up()
        record = {**job.to_json(), "state": JobState.HELD, "claim": None}
        self.jobs[job.id] = record
        return record, True

    def job(self, job_id):
        self._up()
        if job_id not in self.jobs:
            raise NotFound("not-found", job_id)
        return self.jobs[job_id]

    def printer(self, printer_id):
        self._up()
        if printer_id not in self.printers:
            raise NotFound("not-found", printer_id)
        return self.printers[printer_id]

    def renew(self, job_id, **_):
        self._up()
        return self.jobs[job_id]

    def finish(self, job_id, *, state, **_):
        self._up()
        self.finished.append((job_id, state))
        self.jobs[job_id]["state"] = state
        return self.jobs[job_id]


class Sink:
    """A raw 9100 printer on loopback that keeps what each connection sent."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                self.received.append(data)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def node(tmp_path: Path, redis_settings, redis):
    config = dataclasses.replace(CollectorConfig(), id="c1", spool_dir=str(tmp_path), installation_key="11" * 32,
                                 session_key="k" * 32, analyst_url="http://127.0.0.1:9", insecure_plain_http=True,
                                 printer_lock_wait_seconds=2, output_retries=0, **redis_settings)
    built = build_node(config)
    built.analyst = Analyst()  # type: ignore[assignment]
    built.directory.analyst = built.analyst  # type: ignore[assignment]
    yield built
    built.close()


def _submit(node, data: bytes, key: str = "urn:uuid:0001") -> dict:
    headers = {"X-Pullprint-Owner": "alice", "X-Pullprint-Title": "salaries.pdf", "Idempotency-Key": key}
    job, _ = intake.submit(node, headers, [data], submitter="ws1")
    return job


def test_a_planted_submitted_id_does_not_swallow_a_new_submission(node, redis) -> None:
    key = "urn:uuid:cafe"
    planted = keys.submitted("alice", key)
    redis.set(planted, "0" * 32)  # what a Redis writer puts there: an id of its choosing
    job, created = intake.submit(node, {"X-Pullprint-Owner": "alice", "Idempotency-Key": key}, [b"%PDF new"],
                                 submitter="ws1")
    assert created and job["id"] != "0" * 32
    assert node.spool.has(job["id"])  # the document was taken, not answered with the planted id
    again, created_again = intake.submit(node, {"X-Pullprint-Owner": "alice", "Idempotency-Key": key},
                                         [b"%PDF new"], submitter="ws1")
    assert again["id"] == job["id"] and not created_again  # the collector's own record still works


def test_a_planted_release_answer_is_not_handed_out(node, redis) -> None:
    node.analyst.printers["p1"] = {"id": "p1", "uri": "socket://127.0.0.1:9", "in_service": False}
    planted = keys.idempotent_release("alice", "key-1")
    fake = {"printer": "p1", "results": [{"id": "x", "status": "printed", "message": "", "warnings": []}]}
    redis.set(planted, json.dumps(fake))
    session = Session(token="t", user="alice", printer="p1", created_at=time.time())
    answer = release_jobs(node, session, ReleaseRequest(jobs=["0" * 32]), "key-1")
    assert answer != fake and answer["results"][0]["status"] != "printed"
    assert release_jobs(node, session, ReleaseRequest(jobs=["0" * 32]), "key-1") == answer  # its own answer


def test_a_planted_analyst_down_flag_does_not_put_the_site_offline(node, redis) -> None:
    real = build_node(node.config)  # with the real analyst client and its breaker
    try:
        breaker, key = real.analyst.breaker, keys.analyst_down("main")
        redis.set(key, "c9", px=60_000)  # planted: the whole site would stop asking the analyst
        assert breaker.is_open() is False
        redis.set(key, real.seals.seal(key, "c2", ttl_seconds=3), px=3000)  # a collector's own flag
        time.sleep(0.3)  # the breaker reads the flag at most every 0.25 s
        assert breaker.is_open() is True
    finally:
        real.close()


def test_planted_members_and_addresses_are_ignored(node, redis, monkeypatch) -> None:
    monkeypatch.setattr(type(node.membership), "SEEN_FOR_SECONDS", 0.0)  # other nodes announce in this test
    # Redis says c2 is at the attacker's address, and that a collector "evil" exists.
    redis.set(keys.collector_member("c2"), json.dumps({"id": "c2", "url": "https://evil:9", "site": "main"}))
    redis.set(keys.collector_member("evil"), json.dumps({"id": "evil", "url": "https://evil:9", "site": "main"}))
    assert node.membership.peers() == {}
    # c2 announces itself (sealed); its address comes from the analyst's list, never from Redis.
    node.membership.remember([{"id": "c2", "url": "https://10.0.0.2:8801", "site": "main", "alive": True}])
    assert node.membership.peers() == {}  # the planted record does not make c2 alive either
    other = dataclasses.replace(node.config, id="c2")
    peer = build_node(other)
    try:
        peer.membership.announce("main")
    finally:
        peer.close()
    members = node.membership.peers()
    assert list(members) == ["c2"] and members["c2"].url == "https://10.0.0.2:8801"
    # A collector that Redis (genuinely) says is alive but the analyst never listed is no peer.
    stranger = build_node(dataclasses.replace(node.config, id="c3"))
    try:
        stranger.membership.announce("main")
    finally:
        stranger.close()
    assert list(node.membership.peers()) == ["c2"]


def test_planted_gone_and_claims_do_not_block_or_grant_a_release(node, redis, caplog) -> None:
    job_id = "a" * 32
    redis.set(keys.job_gone(job_id), JobState.PRINTED)  # planted: the job would never print
    redis.set(keys.offline_claim(job_id), "c9 p1")      # planted: someone would "hold" it
    with caplog.at_level(logging.WARNING, logger="collector.state_mac"):
        for _ in range(3):
            assert site_claims.claimed_or_gone(node, [job_id]) == set()
    assert len([r for r in caplog.records if "no collector wrote" in r.getMessage()]) == 2  # once per key
    assert site_claims.holder(node, job_id) is None
    assert site_claims.take(node, job_id, 60, printer="p1") is True  # taken over from the planted value
    assert site_claims.holder(node, job_id) == ("c1", "p1")
    other = build_node(dataclasses.replace(node.config, id="c2"))
    try:
        assert site_claims.take(other, job_id, 60, printer="p1") is False  # a real claim still excludes
    finally:
        other.close()
    redis.set(keys.site_claims_ready("main"), "c9")  # planted: offline releases before claims are back
    assert site_claims.ready(node) is False


def test_a_planted_health_reading_does_not_decide_a_release(node, redis) -> None:
    printer = {"id": "p1", "uri": "socket://127.0.0.1:9", "snmp_host": "127.0.0.1", "snmp_port": 9,
               "unreachable_policy": "refuse", "in_service": True}
    fresh_ok = PrinterHealth("p1", True, time.time())
    store_health(redis, fresh_ok)  # unsealed, as a Redis writer would store a "healthy" reading
    verdict = check_printer(printer, node.redis, seals=node.seals, timeout=0.3)
    assert not verdict.allowed  # the planted reading is ignored; the printer itself does not answer
    store_health(node.redis, PrinterHealth("p1", True, time.time()), seals=node.seals)
    assert check_printer(printer, node.redis, seals=node.seals).allowed  # a collector's reading counts


# --- the direct print -------------------------------------------------------------------------------


def _collector_cert(redis_server, name: str) -> bytes:
    cert_file = Path(redis_server.client_tls("collector", name).cert_file)
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def printers(node):
    office, attacker = Sink(), Sink()
    node.analyst.printers["p1"] = {"id": "p1", "uri": office.uri, "in_service": True}
    yield office, attacker
    office.close()
    attacker.close()


def _print(node, redis_server, job_id: str, body: dict, caller: str = "c2"):
    app = create_app(node.config, node=node)
    client = app.test_client()
    return client.post(f"/internal/v1/jobs/{job_id}/print", json=body,
                       environ_base={"pullprint.peer_cert": _collector_cert(redis_server, caller)})


def test_a_forged_direct_print_is_refused_and_the_job_stays_held(node, redis, redis_server, printers) -> None:
    office, attacker = printers
    document = b"%PDF-1.7 confidential salaries"
    job_id = _submit(node, document)["id"]
    forged = [
        # The attacker's printer by URI, with a made-up claim: the URI is never used.
        {"printer": {"id": "p1", "uri": attacker.uri}, "claim": {"user": "alice", "token": 7}},
        # A printer the directory does not have.
        {"printer": {"id": "evil", "uri": attacker.uri}, "claim": {"user": "alice", "token": 7}},
        # A self-declared offline claim, with a planted site claim in Redis naming the caller.
        {"printer": "p1", "claim": {"user": "alice", "token": 0, "offline_at": "2026-12-02T05:00:00+00:00"}},
    ]
    redis.set(keys.offline_claim(job_id), "c2 p1")
    for body in forged:
        answer = _print(node, redis_server, job_id, body)
        assert answer.status_code in (403, 404), (body, answer.json)
    assert attacker.received == [] and office.received == []
    assert node.analyst.jobs[job_id]["state"] == JobState.HELD and node.analyst.finished == []
    assert node.spool.has(job_id) and node.spool.verify(job_id)  # the copy is intact, not shredded

    # The analyst is away: an offline claim counts only if a collector sealed it for this caller and printer.
    node.analyst.reachable = False
    answer = _print(node, redis_server, job_id, forged[2])
    assert answer.status_code in (403, 404) and attacker.received == [] and office.received == []
    node.analyst.reachable = True

    # The genuine claim: the analyst shows the job releasing under c2's claim 7 for p1.
    node.analyst.jobs[job_id].update(state=JobState.RELEASING, claim={"by": "c2", "printer": "p1", "token": 7})
    assert _print(node, redis_server, job_id, forged[0], caller="c3").status_code == 403  # not c3's claim
    answer = _print(node, redis_server, job_id, forged[0])
    assert answer.status_code == 200 and answer.json["status"] == JobState.PRINTED
    deadline = time.monotonic() + 5
    while not office.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert office.received and document in office.received[0] and attacker.received == []


def test_ansible_deploys_the_same_acl_users_as_the_tests_run() -> None:
    import yaml

    from localcluster.redis_server import RULES

    path = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "pullprint_redis" / "vars" / "main.yml"
    deployed = yaml.safe_load(path.read_text())["pullprint_redis_acl_rules"]
    assert {user: " ".join(rules.split()) for user, rules in deployed.items()} == RULES
