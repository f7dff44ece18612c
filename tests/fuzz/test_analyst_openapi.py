"""Schemathesis against the analyst's OpenAPI document on a running cluster of its own: no 5xx, every answer as
documented (status code, content type, body schema, headers); then the same operations against the analyst on a
throwaway PostgreSQL, in process (production's database refuses what SQLite stores).

The cluster is this module's (LocalCluster: one collector, one printer, no cupsd): the fuzzer deletes users,
printers and terminals, so it must not share one. Every call carries the operator's `admin` certificate, the
role administration needs; the collectors' calls take it too (analyst.app.roles_for). Every other case with a
path id gets a live one (a job just registered, a fresh printer, terminal, user, host) so bodies reach past 404.

    PULLPRINT_FUZZ unset or "ci"   CI_EXAMPLES generated cases per operation on the cluster, plus schemathesis's
                                   examples and coverage cases (boundaries, a wrong type per field), a few
                                   sequences, PG_EXAMPLES per operation on PostgreSQL: about a minute in all
    PULLPRINT_FUZZ=long            LONG_EXAMPLES per operation on both (PULLPRINT_FUZZ_OPENAPI_EXAMPLES), the
                                   coverage phase on PostgreSQL too, longer sequences
"""

from __future__ import annotations

import collections
import itertools
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis.errors import FlakyStrategyDefinition

from analyst.app import COLLECTOR_CALLS, create_app
from analyst.config import AnalystConfig
from analyst.openapi import document
from analyst.web import EXTENSION
from localcluster.cluster import LocalCluster
from tests.analyst.conftest import PostgresServer, make_config
from tests.fuzz.conftest import count_input
from tests.fuzz.openapi_checks import CHECKS, CI_EXAMPLES, LONG_EXAMPLES
from tests.fuzz.profile import PROFILE, fuzz
from tests.identities import as_node

# (operation, status) of every answer the cluster gave, reported at the end of the module.
ANSWERS: collections.Counter[tuple[str, int]] = collections.Counter()


# --- the document against the app, in process ------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    folder = tmp_path_factory.mktemp("analyst")
    app = create_app(AnalystConfig(db_url=f"sqlite:///{folder / 'analyst.db'}", badge_pepper="pepper",
                                   auto_migrate=True))
    return app.test_client()


def test_every_route_is_documented_by_its_endpoint(app_client: FlaskClient) -> None:
    served = set()
    for rule in app_client.application.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        served |= {(path, method.lower(), rule.endpoint) for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(path, method, operation["operationId"]) for path, item in document()["paths"].items()
                  for method, operation in item.items()}
    assert served == documented


def test_each_operation_names_the_roles_the_analyst_lets_through(app_client: FlaskClient) -> None:
    for path, item in document()["paths"].items():
        for operation in item.values():
            roles = {role for need in operation["security"] for role in need.get("clusterCertificate", [])}
            endpoint = operation["operationId"]
            if not path.startswith("/api/"):
                assert not roles, endpoint
            elif endpoint == "collectors.heartbeat":
                assert roles == {"collector"}  # and only that collector's own certificate (the view checks)
            else:
                assert roles == ({"collector", "admin"} if endpoint in COLLECTOR_CALLS else {"admin"}), endpoint


def test_the_document_is_served_to_a_caller_without_a_certificate(app_client: FlaskClient) -> None:
    answer = app_client.get("/openapi.json")
    assert answer.status_code == 200 and answer.get_json() == document()
    assert app_client.get("/api/v1/users").status_code == 401  # while the API itself wants a certificate


# What probing the API found (each answered 500 before analyst/validate.py refused it): a 400 naming the field.
FOUND = [
    ("POST", "/api/v1/jobs", {"owner": "alice", "size": 2**64}, "size"),
    ("POST", "/api/v1/jobs", {"owner": "alice", "pages": 2**70}, "pages"),
    ("POST", "/api/v1/jobs", {"owner": "alice", "submitted_at": "9999-12-31T23:00:00Z"}, "submitted_at"),
    ("POST", "/api/v1/jobs", {"owner": "alice", "submitted_at": "0001-01-01T00:00:00+01:00"}, "submitted_at"),
    ("POST", "/api/v1/jobs", {"owner": "alice", "title": "\ud800"}, "title"),
    ("POST", "/api/v1/jobs/j1/renew", {"token": 2**70}, "token"),
    ("POST", "/api/v1/jobs/j1/finish", {"token": 2**31, "state": "held"}, "token"),
    ("PUT", "/api/v1/printers/p1/status", {"state": "ok", "uptime": 2**1030}, "uptime"),
    ("POST", "/api/v1/auth", {"user": "\ud800", "pin": "secret-pin"}, "user"),
    ("POST", "/api/v1/terminals", {"printer": "p1", "description": "\ud800"}, "description"),
    # A NUL is a 500 on PostgreSQL (its driver refuses it in text), in a body field or a query filter.
    ("POST", "/api/v1/jobs", {"owner": "alice", "title": "a\x00b"}, "title"),
    ("POST", "/api/v1/users", {"name": "bob", "email": "bob\x00@example.org"}, "email"),
    ("POST", "/api/v1/auth", {"user": "alice\x00", "pin": "secret-pin"}, "user"),
    ("GET", "/api/v1/jobs?owner=alice%00", None, "owner"),
    ("GET", "/api/v1/events?kind=login%00", None, "kind"),
    ("GET", "/api/v1/printers?site=main%00", None, "site"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), FOUND)
def test_what_probing_found_is_refused_with_its_field(app_client: FlaskClient, method: str, path: str,
                                                      body: dict[str, Any] | None, field: str) -> None:
    admin = as_node("admin", "operator")
    app_client.post("/api/v1/printers", json={"id": "p1", "uri": "socket://127.0.0.1:9100"}, environ_base=admin)
    app_client.post("/api/v1/jobs", json={"id": "j1", "owner": "alice"}, environ_base=admin)
    answer = app_client.open(path, method=method, json=body, environ_base=admin)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["field"] == field


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_json_nested_past_the_stack_is_malformed(app_client: FlaskClient, raw: bytes) -> None:
    answer = app_client.post("/api/v1/jobs", data=raw, content_type="application/json",
                             environ_base=as_node("admin", "operator"))
    assert answer.status_code == 400 and answer.get_json()["error"] == "malformed-json"


# --- schemathesis against a running analyst ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    state = Path(tempfile.mkdtemp(prefix="pullprint-openapi-"))
    state.chmod(0o755)
    with LocalCluster(state, n_collectors=1, n_printers=1, with_cupsd=False) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def analyst_schema(cluster: LocalCluster) -> Any:
    # Fetched with the CA only, no client certificate: the document is public.
    schema = schemathesis.openapi.from_url(f"{cluster.analyst_url}/openapi.json", verify=cluster.ca_file, timeout=10)
    assert cluster.admin_cert is not None
    cert, key = cluster.admin_cert
    schema.config.update(base_url=cluster.analyst_url, tls_verify=cluster.ca_file, request_cert=cert,
                         request_cert_key=key, request_timeout=30)
    return schema


class AnswersReport:
    """Prints ANSWERS in pytest's terminal summary (a plugin registered by the fixture below)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not ANSWERS:
            return
        terminalreporter.section(f"analyst OpenAPI: answers per operation (profile {PROFILE})")
        for operation in sorted({op for op, _ in ANSWERS}):
            counts = ", ".join(f"{status}: {n}" for (op, status), n in sorted(ANSWERS.items()) if op == operation)
            terminalreporter.write_line(f"{operation:<58} {counts}")
        by_class: collections.Counter[str] = collections.Counter()
        for (_, status), n in ANSWERS.items():
            by_class[f"{status // 100}xx"] += n
        classes = ", ".join(f"{k} {v}" for k, v in sorted(by_class.items()))
        terminalreporter.write_line(f"{sum(ANSWERS.values())} calls: {classes}")


@pytest.fixture(scope="module", autouse=True)
def answers_report(pytestconfig: pytest.Config) -> None:
    if not pytestconfig.pluginmanager.has_plugin("pullprint-analyst-openapi-answers"):
        pytestconfig.pluginmanager.register(AnswersReport(), "pullprint-analyst-openapi-answers")


@pytest.fixture(scope="module")
def admin_session(cluster: LocalCluster) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.verify = cluster.ca_file
        session.cert = cluster.admin_cert
        yield session


schema = schemathesis.pytest.from_fixture("analyst_schema")
SETTINGS = fuzz(ci_examples=CI_EXAMPLES) if PROFILE == "ci" else fuzz(max_examples=LONG_EXAMPLES)


_FRESH = itertools.count(1)


Post = Callable[[str, dict[str, Any]], dict[str, Any]]


def _live_ids(case: schemathesis.Case, post: Post, printer: str) -> None:
    """For half of the cases, ids of things that exist in place of generated ones, so that the fuzzed bodies
    reach past 404: a job just registered (claimed first for renew and finish, its owner as the body's user),
    `printer` (a fresh one to delete), a fresh terminal, user and submitting host. `post(path, body)` calls
    the analyst's /api/v1 as the operator and answers the JSON."""
    params = case.path_parameters or {}
    # Every other case, not random.random(): hypothesis seeds `random` alike for every example.
    n = next(_FRESH)
    if not params or n % 2:
        return
    body = case.body if isinstance(case.body, dict) else {}
    if "job_id" in params and "job" in (job := post("/jobs", {"owner": f"fuzz{n}", "size": n})):
        params["job_id"] = job["job"]["id"]
        if "user" in body:
            body["user"] = f"fuzz{n}"
        if case.path.endswith(("/renew", "/finish")):
            claim = post(f"/jobs/{params['job_id']}/claim", {"user": f"fuzz{n}", "collector": "c1", "printer": printer})
            if "token" in body and "token" in claim:
                body["token"] = claim["token"]
    if "printer_id" in params:
        if case.method == "DELETE":
            printer = post("/printers", {"id": f"fuzz{n}", "uri": "socket://127.0.0.1:9"}).get("printer", {}).get("id")
        params["printer_id"] = printer or params["printer_id"]
    if "terminal_id" in params and "terminal" in (terminal := post("/terminals", {"printer": printer})):
        params["terminal_id"] = terminal["terminal"]["id"]
    if "name" in params and "user" in post("/users", {"name": f"fuzz{n}"}):
        params["name"] = f"fuzz{n}"
    if "host" in params and "submitter" in post("/submitters", {"host": f"fuzz{n}.example"}):
        params["host"] = f"fuzz{n}.example"


def _over_https(cluster: LocalCluster, session: requests.Session) -> Post:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        # verify given again: REQUESTS_CA_BUNDLE in the environment would win over the session's own.
        answer = session.post(f"{cluster.analyst_url}/api/v1{path}", json=body, timeout=10, verify=session.verify)
        return dict(answer.json())
    return post


@pytest.mark.e2e
@schema.parametrize()
@SETTINGS
def test_analyst_api_as_documented(case: schemathesis.Case, cluster: LocalCluster, admin_session: requests.Session,
                                   request: pytest.FixtureRequest) -> None:
    count_input(request.node.nodeid.split("[")[0])
    _live_ids(case, _over_https(cluster, admin_session), cluster.printers[0]["id"])
    response = case.call(session=admin_session)
    ANSWERS[(case.operation.label, response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)


STATEFUL = {"ci": {"max_examples": 10, "stateful_step_count": 8},
            "long": {"max_examples": LONG_EXAMPLES // 4, "stateful_step_count": 20}}[PROFILE]


@pytest.mark.e2e
def test_analyst_api_in_sequences(analyst_schema: Any, admin_session: requests.Session) -> None:
    """Calls chained through what the answers carry (a registered job's id into its claim, the claim's token
    into renew and finish, a printer's id into its status, …): schemathesis infers the links from the schemas.

    Failures are collected, not raised: which rules a step may take depends on what the server answered
    before, so hypothesis replaying a failing sequence against the changed server reports only that its
    data generation was flaky, hiding the failure itself."""
    workflow = analyst_schema.as_state_machine()
    failures: list[str] = []

    class AsOperator(workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"session": admin_session}

        def validate_response(self, response: Any, case: schemathesis.Case, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            ANSWERS[(case.operation.label, response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseExceptionGroup as group:  # schemathesis's FailureGroup: every check that failed
                failures.extend(f"{case.operation.label} -> {response.status_code}: {failure}"
                                for failure in group.exceptions)

    try:
        AsOperator.run(settings=fuzz(**STATEFUL))
    except FlakyStrategyDefinition:
        # The same reason, without any failure: hypothesis saw one choice prefix lead to other rules (the server
        # had changed). It ends the exploration there; the sequences run until then are checked below.
        assert sum(ANSWERS.values()) > 0
    assert not failures, f"{len(failures)} failures, the first ones:\n" + "\n\n".join(failures[:3])


# --- the same against an analyst on PostgreSQL, in process ------------------------------------------------------
# LocalCluster's analyst runs on SQLite; production's on PostgreSQL, whose driver refuses what SQLite stores (a NUL
# in text, an INTEGER past 2^31). This is the analyst app on a throwaway PostgreSQL (tests/analyst/conftest.py's:
# TLS, SCRAM), called through its WSGI interface as the operator's certificate.

ADMIN = as_node("admin", "operator")
PG_EXAMPLES = 10


@pytest.fixture(scope="module")
def postgres_app() -> Iterator[Flask]:
    server = PostgresServer()
    server.start()
    try:
        app = create_app(make_config(server.new_database()))
        app.test_client().post("/api/v1/printers", json={"id": "p1", "uri": "socket://127.0.0.1:9100"},
                               environ_base=ADMIN)
        yield app
        app.extensions[EXTENSION].db.dispose()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_schema(postgres_app: Flask) -> Any:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", postgres_app)
    # The coverage phase (every boundary and wrong type, ~1,700 calls) runs on the cluster in the short form.
    schema.config.phases.coverage.enabled = PROFILE == "long"
    return schema


postgres_schema_ = schemathesis.pytest.from_fixture("postgres_schema")


@pytest.mark.integration
@postgres_schema_.parametrize()
@(fuzz(ci_examples=PG_EXAMPLES) if PROFILE == "ci" else fuzz(max_examples=LONG_EXAMPLES))
def test_analyst_api_on_postgresql(case: schemathesis.Case, postgres_app: Flask,
                                   request: pytest.FixtureRequest) -> None:
    count_input(request.node.nodeid.split("[")[0])
    client = postgres_app.test_client()

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(client.post(f"/api/v1{path}", json=body, environ_base=ADMIN).get_json() or {})

    _live_ids(case, post, "p1")
    response = case.call(environ_base=ADMIN)
    ANSWERS[(f"{case.operation.label} (PostgreSQL)", response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)
