"""Mutual TLS between every part, on a real cluster: nothing in clear, nobody without a cluster certificate,
each certificate only what its role may do, a wrong peer refused, a revoked collector refused everywhere."""

from __future__ import annotations

import http.client
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
import requests

from localcluster.cluster import LocalCluster
from nodeserver.client import NodeClient, Unreachable
from pullprint.pki import Authority, identity_dns
from pullprint.tls import TlsFiles
from tests.e2e.conftest import cluster_state_dir, tls

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_CRL_REFRESH_SECONDS": "1"}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _get(url: str, cert: tuple[str, str] | None, ca: str) -> int:
    return requests.get(url, verify=ca, cert=cert, timeout=5).status_code


def _refused(url: str, cert: tuple[str, str] | None, ca: str) -> bool:
    try:
        requests.get(url, verify=ca, cert=cert, timeout=5)
    except requests.exceptions.SSLError:
        return True
    except requests.exceptions.ConnectionError as exc:  # the server's alert can arrive as a reset
        return "reset" in str(exc).lower() or "alert" in str(exc).lower() or "EOF" in str(exc)
    return False


def test_every_part_speaks_tls_only(small: LocalCluster) -> None:
    info = small.describe()
    urls = [info["lb_url"], info["analyst_url"], *(c["url"] for c in info["collectors"])]
    assert all(url.startswith("https://") for url in urls) and Path(info["ca_file"]).exists()
    for url in urls:
        plain = "http://" + url.split("://", 1)[1] + "/healthz"
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            urllib.request.urlopen(plain, timeout=5)  # noqa: S310 - the point: plain HTTP gets nothing


def test_collectors_take_no_connection_without_a_cluster_certificate(small: LocalCluster, tmp_path: Path) -> None:
    c1 = small.collectors["c1"]
    assert _get(f"{c1.url}/healthz", small.admin_cert, small.ca_file) == 200
    assert _refused(f"{c1.url}/healthz", None, small.ca_file)
    other = Authority(tmp_path / "other-ca")
    other.init()
    cert, key = other.issue("collector", "c2", ["127.0.0.1"])  # the right name, from a CA nobody trusts
    assert _refused(f"{c1.url}/healthz", (str(cert), str(key)), small.ca_file)
    # The public front end asks for no certificate (terminals, backends), but only over TLS.
    assert requests.get(f"{small.lb_url}/healthz", verify=small.ca_file, timeout=5).status_code == 200


def test_each_certificate_may_do_only_what_its_role_may(small: LocalCluster) -> None:
    c1 = small.collectors["c1"]
    internal = f"{c1.url}/internal/v1/users/alice/jobs"
    assert _get(internal, small.node_cert("collector", "c2"), small.ca_file) == 200
    for role, name in (("admin", "operator"), ("lb", "lb"), ("print-server", "ps1")):
        assert _get(internal, small.node_cert(role, name), small.ca_file) == 403, role
    # The analyst: a collector does its work, never administration; an admin administers.
    users = f"{small.analyst_url}/api/v1/users"
    collector = small.node_cert("collector", "c1")
    assert requests.post(users, json={"name": "mallory", "badge": "5550001"}, verify=small.ca_file, cert=collector,
                         timeout=5).status_code == 403
    assert _get(f"{small.analyst_url}/api/v1/sync", collector, small.ca_file) == 200
    assert _get(users, None, small.ca_file) == 401
    assert "mallory" not in [u["name"] for u in requests.get(users, timeout=5, **tls(small)).json()["users"]]


def test_a_node_call_reaches_only_the_node_it_names(small: LocalCluster) -> None:
    cert, key = small.node_cert("collector", "c1")
    client = NodeClient(TlsFiles(small.ca_file, cert, key), 2.0)
    c2 = small.collectors["c2"]
    assert client.request("GET", f"{c2.url}/healthz", identity=identity_dns("collector", "c2")).status_code == 200
    # An address that is not c1's (planted in Redis, say): the certificate there is c2's, so no request is sent.
    with pytest.raises(Unreachable) as refused:
        client.request("POST", f"{c2.url}/internal/v1/jobs/{'0' * 32}/print", identity=identity_dns("collector", "c1"),
                       json={})
    assert refused.value.maybe_acted is False
    with pytest.raises(Unreachable):
        client.request("GET", f"{small.analyst_url}/healthz", identity=identity_dns("collector", "c2"))


def test_a_revoked_collector_is_refused_by_the_analyst_and_its_peers_within_seconds(small: LocalCluster) -> None:
    c1, c2 = small.collectors["c1"], small.collectors["c2"]
    revoked = small.node_cert("collector", "c2")
    assert _get(f"{c1.url}/internal/v1/users/alice/jobs", revoked, small.ca_file) == 200
    assert small.redis is not None
    c2_redis = small.redis.client("collector-c2", TlsFiles(small.ca_file, *revoked), socket_timeout=5)
    assert c2_redis.ping()
    small.revoke_collector("c2")
    started = time.monotonic()
    # Redis checks no CRL, but c2's own ACL user is gone: its connection is closed, its password opens nothing.
    with pytest.raises(redis.exceptions.ConnectionError):
        c2_redis.get("pp:anything")
    checks = {"analyst": f"{small.analyst_url}/api/v1/sync", "peer c1": f"{c1.url}/internal/v1/users/alice/jobs"}
    refused_after: dict[str, float] = {}
    while time.monotonic() - started < 60 and len(refused_after) < len(checks):
        for name, url in checks.items():
            if name not in refused_after and _refused(url, revoked, small.ca_file):
                refused_after[name] = time.monotonic() - started
        time.sleep(0.2)
    assert set(refused_after) == set(checks), f"still accepted after 60 s: {set(checks) - set(refused_after)}"
    assert max(refused_after.values()) < 10  # crl_refresh_seconds is 1 here; 30 by default (+1 s)
    # c1 took the new CRL from the analyst, and as a client it no longer trusts c2 as a server either.
    client = NodeClient(TlsFiles(small.ca_file, *small.node_cert("collector", "c1"),
                                 str(c1.spool_dir.parent / "tls" / "crl.pem")), 2.0)
    with pytest.raises(Unreachable):
        client.request("GET", f"{c2.url}/healthz", identity=identity_dns("collector", "c2"))
    other = small.node_cert("collector", "c1")
    assert _get(f"{small.analyst_url}/api/v1/sync", other, small.ca_file) == 200  # the others are untouched
    assert small.redis.client("collector-c1", TlsFiles(small.ca_file, *other), socket_timeout=5).ping()
    assert requests.get(f"{c1.url}/readyz", verify=small.ca_file, cert=other, timeout=10).json()["ready"]
