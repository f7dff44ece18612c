"""Schemathesis against the collector's OpenAPI document (`GET /openapi.json`, collector/openapi.py) on a running
cluster: no 5xx, every answer as documented (status code, content type, body schema, headers).

The cluster is this module's own (LocalCluster: two collectors, so a submit can keep its two copies; one
printer; no cupsd): the fuzzer submits, logs in, releases and logs out, so it must not share one. The base
URL, the CA and the client certificate come from the LocalCluster object: every call goes straight to a
collector (not through HAProxy, which does not route /internal/*) over mutual TLS with the operator's
certificate; a submit carries the cluster's submitting-host credential, a session call the enrolled
terminal's, and a `{token}` in a path is, for half of the cases, a session opened just before.

    PULLPRINT_FUZZ unset or "ci"   CI_EXAMPLES generated cases per operation (plus schemathesis's examples and
                                   coverage cases): the run stays under ~2 min, cluster start included
    PULLPRINT_FUZZ=long            LONG_EXAMPLES per operation (PULLPRINT_FUZZ_OPENAPI_EXAMPLES)
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis

from localcluster.cluster import LocalCluster
from tests.fuzz.conftest import count_input
from tests.fuzz.openapi_checks import CHECKS, CI_EXAMPLES, LONG_EXAMPLES
from tests.fuzz.profile import PROFILE, fuzz


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    state = Path(tempfile.mkdtemp(prefix="pullprint-collector-openapi-"))
    state.chmod(0o755)
    with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _collector_url(cluster: LocalCluster) -> str:
    return next(iter(cluster.collectors.values())).url


@pytest.fixture(scope="module")
def collector_schema(cluster: LocalCluster) -> Any:
    url = _collector_url(cluster)
    # A collector takes only callers with a cluster certificate (HAProxy presents one for the public).
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", verify=cluster.ca_file or True,
                                           cert=cluster.admin_cert, timeout=10)
    schema.config.update(base_url=url)
    return schema


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.verify = cluster.ca_file or True
        if cluster.admin_cert:
            session.cert = cluster.admin_cert
        yield session


schema = schemathesis.pytest.from_fixture("collector_schema")
SETTINGS = fuzz(ci_examples=CI_EXAMPLES) if PROFILE == "ci" else fuzz(max_examples=LONG_EXAMPLES)


def _credentials(case: schemathesis.Case, cluster: LocalCluster, operator: requests.Session) -> None:
    """The caller's credential for the operation, and sometimes a live session in place of a generated token."""
    printer = cluster.printers[0]
    terminal = printer.get("terminal_token")
    if case.path == "/api/v1/jobs":
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {cluster.secret('submit_token')}"}
    elif case.path.startswith("/api/v1/sessions") and terminal:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {terminal}"}
    if "token" in (case.path_parameters or {}) and random.random() < 0.5:  # noqa: S311 - seeded by hypothesis
        user = cluster.users[0] if getattr(cluster, "users", None) else {"badge": "0451234567"}
        login = operator.post(f"{_collector_url(cluster)}/api/v1/sessions", timeout=10,
                              json={"printer": printer["id"], "badge": user["badge"]},
                              headers={"Authorization": f"Bearer {terminal}"} if terminal else {})
        if login.status_code == 201:
            case.path_parameters = {**case.path_parameters, "token": login.json()["session"]}


@pytest.mark.e2e
@schema.parametrize()
@SETTINGS
def test_collector_api_as_documented(case: schemathesis.Case, cluster: LocalCluster,
                                     operator: requests.Session, request: pytest.FixtureRequest) -> None:
    count_input(request.node.nodeid.split("[")[0])
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    _credentials(case, cluster, operator)
    # /internal/* is for the peers: a collector's certificate (another role is a 403, see the module's notes).
    cert = cluster.node_cert("collector", "c2") if case.path.startswith("/internal/") and cluster.ca_file \
        else operator.cert
    # verify and cert again: a request's own settings (schemathesis passes verify=True) win over the session's.
    case.call_and_validate(session=operator, checks=CHECKS, timeout=60, verify=operator.verify, cert=cert)
